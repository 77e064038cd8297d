"""The PostgreSQL store against a real server (PostgreSQL 16 with pgvector from the
pgserver wheel, started once in a temporary folder): builds, incremental sync by file hash,
atomic switch, the build lock, model and connection errors, and the same rankings, answers
and UI results as the embedded store."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from itertools import count
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pgserver
import psycopg
import pytest

from rag.engine import Engine
from rag.evaluate import evaluate_engine, load_questions
from rag.index import IndexBuilder, IndexBusyError
from rag.pgstore import PgStore, SchemaMismatchError
from rag.settings import PROJECT_ROOT, Settings
from rag.ui.chat import answer_steps
from rag.ui.context import UIContext
from rag.ui.labels import LABELS
from rag.ui.search import search_hits
from rag.ui.state import Prefs
from tests.conftest import CORPUS

QUESTION = "Сколько терактов предотвращено с 2014 года?"
GOLD = "000_14c9b7630dbfab34.txt"
OTHER = "001_2058e0d0ac905499.txt"
DEV = PROJECT_ROOT / "tests" / "data" / "dev.jsonl"
_databases = count()


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server with pgvector, stopped and removed at the end of the session.

    Its data folder is not under pytest's temporary folder: run as root, the server runs
    as its own user, and a later pytest session closes that folder to other users."""
    data = tempfile.mkdtemp(prefix="rag-pgtest-")
    server = pgserver.get_server(data, cleanup_mode="stop")
    yield server
    server.cleanup()
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def database_url(pg_server) -> str:
    """A fresh, empty database of the test server."""
    name = f"rag_test_{next(_databases)}"
    pg_server.psql(f"CREATE DATABASE {name};")
    socket_dir = parse_qs(urlparse(pg_server.get_uri()).query)["host"][0]
    return f"postgresql://postgres@/{name}?host={socket_dir}"


@pytest.fixture
def pg_engine(tmp_path, embedder, database_url):
    """An Engine over a private copy of the corpus whose index lives in PostgreSQL."""

    def make(**overrides) -> Engine:
        corpus = tmp_path / "corpus"
        if not corpus.exists():
            shutil.copytree(CORPUS, corpus)
        settings = Settings.from_env(
            corpus_dir=corpus,
            index_dir=tmp_path / "unused-index",
            database_url=database_url,
            **overrides,
        )
        engine = Engine(settings)
        engine.__dict__["embedder"] = embedder
        return engine

    return make


def _chunk_ids(engine: Engine) -> dict[str, list[int]]:
    with psycopg.connect(engine.settings.database_url) as conn:
        rows = conn.execute("SELECT file, id FROM rag_chunks ORDER BY file, chunk").fetchall()
    ids: dict[str, list[int]] = {}
    for file, row_id in rows:
        ids.setdefault(file, []).append(row_id)
    return ids


def test_build_search_and_incremental_sync_by_file_hash(pg_engine):
    engine = pg_engine()
    report = engine.build_index()
    assert report.full_rebuild and report.files_total == 5
    assert not (engine.settings.index_dir).exists()  # nothing written beside the database
    hits = engine.search(QUESTION)
    assert hits[0].file == GOLD and hits[0].dense_score > 0.5
    text = (CORPUS / GOLD).read_text("utf-8")
    assert all(text[h.start : h.end] == h.text for h in hits if h.file == GOLD)
    assert engine.build_index().unchanged
    before = _chunk_ids(engine)

    corpus = engine.settings.corpus_dir
    (corpus / OTHER).write_text("Заголовок\n\nВ Алматы открыли приют для котов.", "utf-8")
    report = engine.build_index()
    assert report.files_embedded == [OTHER] and len(report.files_reused) == 4
    after = _chunk_ids(engine)
    assert {f: ids for f, ids in after.items() if f != OTHER} == {
        f: ids for f, ids in before.items() if f != OTHER
    }  # the other files' rows (and vectors) were kept, not re-embedded
    assert engine.search("приют для котов", k=1)[0].file == OTHER

    (corpus / "new.txt").write_text("Новость\n\nВ Караганде построили обсерваторию.", "utf-8")
    (corpus / GOLD).unlink()
    report = engine.build_index()
    assert report.files_embedded == ["new.txt"] and report.files_removed == [GOLD]
    assert GOLD not in engine.index.manifest["documents"]
    assert engine.search("обсерватория в Караганде", k=1)[0].file == "new.txt"
    assert all(h.file != GOLD for h in engine.search(QUESTION, k=10))
    assert engine.index.lexical_coverage("терактов предотвращено") < 1.0  # its words left too


def test_a_failed_sync_leaves_the_old_content_served(pg_engine):
    engine = pg_engine()
    engine.build_index()
    old_id, old_count = engine.index.build_id, len(engine.index)
    corpus = engine.settings.corpus_dir
    (corpus / GOLD).write_text("Заголовок\n\nПро котов в Алматы.", "utf-8")

    for step in ("write articles", "write lexemes", "manifest", "current"):

        def fail(name: str, step: str = step) -> None:
            if name == step:
                raise OSError(f"disk full at {step}")

        builder = IndexBuilder(engine.settings, engine.embedder, progress=False, fault=fail)
        with pytest.raises(OSError, match="disk full"):
            builder.build()
        fresh = PgStore(engine.settings).load()
        assert fresh.build_id == old_id and len(fresh) == old_count
        assert engine.search(QUESTION)[0].file == GOLD  # the old text still answers

    report = engine.build_index()
    assert report.files_embedded == [GOLD] and engine.index.build_id != old_id
    assert engine.search("котов в Алматы", k=1)[0].file == GOLD


def test_a_second_build_is_refused_while_one_runs(pg_engine):
    engine = pg_engine()
    busy = pytest.raises(IndexBusyError, match="another index build is running")
    with PgStore(engine.settings).locked(), busy:
        engine.build_index()
    assert engine.build_index().full_rebuild  # the lock is gone with its holder


def test_an_index_of_another_model_is_named_on_load(pg_engine):
    engine = pg_engine()
    engine.build_index()
    other = engine.settings.replace(embedding_model="multilingual-e5-small")
    with pytest.raises(SchemaMismatchError) as caught:
        PgStore(other).load()
    message = str(caught.value)
    assert "embeddinggemma-300m" in message and "multilingual-e5-small" in message
    assert "rag index --rebuild" in message and "\n" not in message


def _cli(env: dict[str, str], *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        **kw,
    )


def test_an_unreachable_server_is_one_line_and_exit_code_1(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://rag:secret@127.0.0.1:{port}/rag"
    out = _cli({"RAG_DATABASE_URL": url, "RAG_CORPUS_DIR": str(CORPUS)}, "search", "теракт")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the database")
    assert f"127.0.0.1:{port}" in lines[0] and "secret" not in lines[0]
    assert "Traceback" not in out.stderr


def test_dev_rankings_match_the_embedded_store(pg_engine, built_engine):
    engine = pg_engine()
    engine.build_index()
    questions = load_questions(DEV)
    scores = {}
    for name, eng in (("embedded", built_engine), ("postgres", engine)):
        result = evaluate_engine(eng, questions, "hybrid", answers=False, use_llm=False)
        scores[name] = result["summary"]["overall"]["recall@1"]
    print(f"dev hybrid recall@1: {scores}")
    assert abs(scores["postgres"] - scores["embedded"]) <= 0.02


def test_cli_index_search_and_ask_without_llm(pg_engine):
    engine = pg_engine()
    env = {
        "RAG_DATABASE_URL": engine.settings.database_url,
        "RAG_CORPUS_DIR": str(engine.settings.corpus_dir),
    }
    indexed = _cli(env, "index", "--quiet")
    assert indexed.returncode == 0, indexed.stderr
    asked = _cli(env, "ask", QUESTION, "--no-llm", "--json")
    assert asked.returncode == 0, asked.stderr
    data = json.loads(asked.stdout)
    assert not data["refused"] and "11" in data["answer"]
    cite = data["citations"][0]
    assert cite["file"] == GOLD
    assert (CORPUS / GOLD).read_text("utf-8")[cite["start"] : cite["end"]] == cite["text"]


def test_the_ui_searches_and_answers_from_postgres(pg_engine):
    engine = pg_engine(llm_model="")
    engine.build_index()
    prefs = Prefs.from_settings(engine.settings).to_state() | {"use_llm": False}
    ctx = UIContext(engine, LABELS["en"], prefs, "en")

    page, hits = search_hits(ctx, QUESTION, "hybrid", prefs)
    assert hits[0]["file"] == GOLD and "⚠️" not in page

    *_, last = answer_steps(ctx, QUESTION, [], [], prefs, [])
    assert "11" in last.chat[-1]["content"] and last.citations[0]["file"] == GOLD


def test_article_texts_and_problem_match_the_embedded_store(pg_engine, built_engine):
    engine = pg_engine()
    engine.build_index()
    assert engine.index.article_texts() == built_engine.index.article_texts()
    assert engine.retriever.problem() is None
    assert Path(engine.settings.corpus_dir).is_dir()


def test_duplicate_stories_are_indexed_once_and_collapsed(pg_engine, tmp_path):
    from rag.timefilter import explicit
    from tests.archive_files import COPY, EDITED, FIRST, SYNDICATED, story_copies

    corpus = tmp_path / "corpus"
    story_copies(corpus, CORPUS / GOLD, [CORPUS / OTHER])
    engine = pg_engine()
    report = engine.build_index()
    assert report.files_copies == [COPY] and report.stories == 1
    chunks = _chunk_ids(engine)
    assert COPY not in chunks and FIRST in chunks  # the exact copy is indexed once
    assert engine.index.manifest["documents"][COPY]["source"] == "Kazinform"
    story = {FIRST, COPY, SYNDICATED, EDITED}

    hits = engine.search(QUESTION, k=8)
    assert {h.file for h in hits} & story == {FIRST}
    top = next(h for h in hits if h.file == FIRST)
    assert [d["file"] for d in top.duplicates] == [COPY, SYNDICATED, EDITED]
    hits = engine.search(QUESTION, k=8, filters=explicit(source="kazinform"))
    assert hits and {h.file for h in hits} == {COPY}

    (corpus / FIRST).unlink()  # the exact copy takes over the passages
    report = engine.build_index()
    assert report.files_embedded == [COPY] and report.files_removed == [FIRST]
    assert COPY in _chunk_ids(engine)
    assert {h.file for h in engine.search(QUESTION, k=8)} & story == {COPY}
