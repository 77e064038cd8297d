"""Embeddings from a model server (RAG_EMBEDDING_URL): a real ``rag serve-embeddings``
process gives the in-process vectors; a server that is down, late, failing or serving
another model is reported, retried or refused, never turned into silent vectors.

The failure cases use small stand-in models behind the project's real HTTP app."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from rag.embedding_service import create_app
from rag.embeddings import EmbeddingMismatchError
from rag.engine import Engine
from rag.remote_embeddings import EmbeddingServerError, RemoteEmbedder
from rag.settings import PROJECT_ROOT, Settings

ARTICLES = sorted((PROJECT_ROOT / "corpus").iterdir())[:3]
QUERIES = ["Сколько терактов предотвратили в Казахстане?", "цены на нефть", "terrorism"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, seconds: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not come up in {seconds} s")


@pytest.fixture(scope="module")
def server_url():
    """``rag serve-embeddings`` with the default model, in its own process."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    env.pop("RAG_EMBEDDING_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve-embeddings", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for(url + "/models", 600, process)
        yield url
    finally:
        process.terminate()
        process.wait(30)


class StandIn:
    """A small deterministic model of ``dim`` dimensions; ``fail_first`` requests raise
    (the app answers HTTP 500); ``zeros`` answers zero vectors."""

    def __init__(self, dim: int = 768, fail_first: int = 0, zeros: bool = False):
        self.dim, self.fail_first, self.zeros = dim, fail_first, zeros
        self.calls = 0

    def embed_raw(self, texts):
        self.calls += 1
        if self.calls <= self.fail_first:
            raise RuntimeError("model still warming up")
        if self.zeros:
            return np.zeros((len(texts), self.dim), dtype=np.float32)
        seeds = [sum(t.encode()) for t in texts]
        return np.stack([np.random.default_rng(s).normal(size=self.dim) for s in seeds])

    def count_tokens(self, texts):
        return [len(t.split()) for t in texts]


class AppServer:
    """The project's embedding app around a stand-in, served by uvicorn in a thread."""

    def __init__(self, model: StandIn, name: str = "stand-in", port: int | None = None):
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        app = create_app(model, name)
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, delay: float = 0.0) -> AppServer:
        def run():
            time.sleep(delay)
            self.server.run()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        if not delay:
            wait_for(self.url + "/models", 30)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def stand_in():
    servers: list[AppServer] = []

    def start(model: StandIn, name: str = "stand-in", delay: float = 0.0) -> AppServer:
        servers.append(AppServer(model, name).start(delay))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def remote(url: str, **overrides) -> RemoteEmbedder:
    return RemoteEmbedder(Settings.from_env(embedding_url=url, **overrides))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def cli(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), **env_extra)
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], env=env, capture_output=True, text=True
    )


def corpus_copy(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in ARTICLES:
        shutil.copy(path, corpus / path.name)
    return corpus


def test_server_gives_the_in_process_vectors(server_url, embedder):
    client = remote(server_url)
    assert client.served_model == "embeddinggemma-300m"
    assert client.dim == embedder.dim
    assert (client.query_prompt, client.document_prompt) == (
        embedder.query_prompt,
        embedder.document_prompt,
    )
    texts = [p.read_text("utf-8")[:600] for p in ARTICLES]
    assert client.count_tokens(texts) == embedder.count_tokens(texts)
    titles = ["Заголовок", "", "Title"]
    local = embedder.embed_documents(texts, titles)
    served = client.embed_documents(texts, titles)
    assert cosines(local, served).min() > 0.999
    assert cosines(embedder.embed_queries(QUERIES), client.embed_queries(QUERIES)).min() > 0.999


def test_index_built_through_the_server_matches_the_in_process_one(
    server_url, make_engine, tmp_path
):
    local = make_engine(ARTICLES)
    local.build_index()
    corpus = local.settings.corpus_dir
    env = {
        "RAG_CORPUS_DIR": str(corpus),
        "RAG_INDEX_DIR": str(tmp_path / "served-index"),
        "RAG_EMBEDDING_URL": server_url,
        "RAG_EMBEDDING_REQUEST_SIZE": "4",  # several requests per build
    }
    done = cli(env, "index", "--quiet", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["chunks_embedded"] == len(local.index)

    served = Engine(Settings.from_env(corpus_dir=corpus, index_dir=tmp_path / "served-index"))
    served.__dict__["embedder"] = local.embedder  # the index as data; searched in-process
    assert [c.text for c in served.index.chunks] == [c.text for c in local.index.chunks]
    assert cosines(served.index.vectors, local.index.vectors).min() > 0.999
    assert served.index.manifest["signature"]["embedding_served_model"] == "embeddinggemma-300m"

    for query in QUERIES:
        found = cli(env, "search", query, "--mode", "dense", "--json")
        assert found.returncode == 0, found.stderr
        results = json.loads(found.stdout)["results"]
        expected = local.search(query, mode="dense")
        # equal to float tolerance: the best passage, and the cosine of every passage both
        # found. A near tie can change which neighbouring chunks merge into one hit, and so
        # the last ranks of the few chunks of three articles: most passages are shared.
        assert (results[0]["file"], results[0]["chunk"]) == (expected[0].file, expected[0].chunk)
        local_scores = {(h.file, h.chunk): h.score for h in expected}
        shared = [r for r in results if (r["file"], r["chunk"]) in local_scores]
        assert len(shared) >= min(len(results), len(expected)) - 1
        for r in shared:
            assert abs(r["score"] - local_scores[(r["file"], r["chunk"])]) < 0.01


def test_a_server_that_is_down_is_an_error_at_index_and_search(built_engine, tmp_path):
    down = f"http://127.0.0.1:{free_port()}/v1"
    env = {
        "RAG_CORPUS_DIR": str(corpus_copy(tmp_path)),
        "RAG_INDEX_DIR": str(tmp_path / "index"),
        "RAG_EMBEDDING_URL": down,
        "RAG_EMBEDDING_RETRY_SECONDS": "1",
    }
    done = cli(env, "index", "--quiet")
    assert done.returncode == 1
    assert f"the embedding server at {down} refused the connection" in done.stderr
    assert "is it running?" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "index" / "CURRENT").exists()

    env["RAG_CORPUS_DIR"] = str(built_engine.settings.corpus_dir)
    env["RAG_INDEX_DIR"] = str(built_engine.settings.index_dir)
    found = cli(env, "search", "теракты в Казахстане")
    assert found.returncode == 1
    assert "embedding server" in found.stderr and "is it running?" in found.stderr
    assert found.stdout == ""


def test_late_and_failing_servers_are_retried(stand_in):
    late = stand_in(StandIn(), delay=1.5)
    client = remote(late.url, embedding_retry_seconds=30)
    started = time.monotonic()
    assert client.embed_queries(["вопрос"]).shape == (1, 768)
    assert time.monotonic() - started >= 1.0

    flaky = StandIn(fail_first=2)
    client = remote(stand_in(flaky).url, embedding_retry_seconds=30)
    vectors = client.embed_documents(["a", "b"])
    assert flaky.calls == 3 and np.allclose(np.linalg.norm(vectors, axis=1), 1)


def test_retries_are_bounded():
    waits: list[float] = []
    client = RemoteEmbedder(
        Settings.from_env(
            embedding_url=f"http://127.0.0.1:{free_port()}/v1", embedding_retry_seconds=2
        ),
        sleep=waits.append,  # no real waiting: the deadline passes on its own
    )
    started = time.monotonic()
    with pytest.raises(EmbeddingServerError, match=r"refused the connection.*tried"):
        client.embed_queries(["вопрос"])
    assert time.monotonic() - started < 10
    assert len(waits) >= 2 and max(waits) <= 2  # backoff, never past the deadline


def test_wrong_answers_and_names_are_errors_not_vectors(stand_in):
    zeros = stand_in(StandIn(zeros=True))
    with pytest.raises(EmbeddingServerError, match="zero or non-finite"):
        remote(zeros.url).embed_queries(["вопрос"])
    named = stand_in(StandIn(), name="stand-in")
    with pytest.raises(EmbeddingServerError, match=r"HTTP 404.*RAG_EMBEDDING_SERVER_MODEL"):
        remote(named.url, embedding_server_model="another").embed_queries(["вопрос"])


def test_an_index_of_another_model_or_dimension_is_refused(make_engine, stand_in):
    engine = make_engine(ARTICLES)
    engine.build_index()
    narrow = stand_in(StandIn(dim=8), name="embeddinggemma-300m")
    other = stand_in(StandIn(dim=768), name="another-model")

    narrow_engine = Engine(engine.settings.replace(embedding_url=narrow.url))
    with pytest.raises(EmbeddingMismatchError, match=r"768 dimensions.*gives 8 dimensions"):
        narrow_engine.search("теракты в Казахстане", mode="dense")
    assert narrow_engine.search("теракты в Казахстане", mode="lexical")  # no vectors, no refusal

    served_engine = Engine(engine.settings.replace(embedding_url=other.url))
    assert served_engine.build_index().full_rebuild  # another model: everything re-embedded
    same_size = stand_in(StandIn(dim=768), name="embeddinggemma-300m")
    again = Engine(engine.settings.replace(embedding_url=same_size.url))
    with pytest.raises(EmbeddingMismatchError, match=r"served as another-model.*now serves"):
        again.search("теракты в Казахстане")

    renamed = Engine(engine.settings.replace(embedding_model="multilingual-e5-small"))
    renamed.__dict__["embedder"] = engine.embedder
    with pytest.raises(EmbeddingMismatchError, match="the settings name multilingual-e5-small"):
        renamed.search("теракты в Казахстане")
