"""Indexing speed: in-process embedding vs the same model behind an embedding server.

    .venv/bin/python bench/embedding_server.py --articles 60
    .venv/bin/python bench/embedding_server.py --url http://127.0.0.1:7997 --server-model NAME

Without ``--url`` it starts ``rag serve-embeddings`` on a free port (same machine, same
model), so the ratio is the cost of the HTTP round trips and JSON; with ``--url`` it
measures any OpenAI-compatible server (an Infinity or TEI instance). Builds alternate
(in-process, server, in-process, ...) over the same synthetic articles; each build starts
from an empty index; model loading is outside the timing. It also reports how close the
two indexes' vectors are (minimum cosine over passages).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.index_speed import synthetic_corpus
from rag.engine import Engine
from rag.settings import PROJECT_ROOT, Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_own_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    env.pop("RAG_EMBEDDING_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve-embeddings", "--port", str(port)], env=env
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(1)
    process.terminate()
    raise SystemExit("the embedding server did not start")


def timed_build(engine: Engine) -> tuple[float, int]:
    """Seconds and passages of a build from nothing (the model is already loaded)."""
    started = time.perf_counter()
    report = engine.build_index(rebuild=True)
    return time.perf_counter() - started, report.chunks_embedded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=60, help="synthetic articles")
    parser.add_argument("--rounds", type=int, default=2, help="builds per backend")
    parser.add_argument("--url", default="", help="an already running server (…/v1)")
    parser.add_argument("--server-model", default="", help="model name the server expects")
    parser.add_argument("--request-size", type=int, default=32, help="passages per request")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    process = None
    url = args.url.rstrip("/")
    if not url:
        process, url = start_own_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus"
            synthetic_corpus(corpus, args.articles)
            base = Settings.from_env(
                corpus_dir=corpus,
                index_dir=Path(tmp) / "local",
                embedding_url="",
                embedding_request_size=args.request_size,
            )
            local = Engine(base)
            served = Engine(
                base.replace(
                    index_dir=Path(tmp) / "served",
                    embedding_url=url,
                    embedding_server_model=args.server_model,
                )
            )
            local.embedder  # noqa: B018 - load the model outside the timed builds
            served.embedder.fingerprint  # noqa: B018 - reach the server once
            rates: dict[str, list[float]] = {"in_process": [], "server": []}
            passages = 0
            for _ in range(args.rounds):
                for name, engine in (("in_process", local), ("server", served)):
                    seconds, passages = timed_build(engine)
                    rates[name].append(passages / seconds)
                    print(f"{name}: {passages} passages in {seconds:.1f} s", flush=True)
            a, b = local.index, served.index
            same_passages = [c.text for c in a.chunks] == [c.text for c in b.chunks]
            cosine = float(np.min(np.sum(a.vectors * b.vectors, axis=1))) if same_passages else None
    finally:
        if process is not None:
            process.terminate()
            process.wait(30)

    in_process = statistics.median(rates["in_process"])
    server = statistics.median(rates["server"])
    result = {
        "server": args.url or "rag serve-embeddings (same machine)",
        "articles": args.articles,
        "passages": passages,
        "rounds": args.rounds,
        "request_size": args.request_size,
        "in_process_passages_per_s": round(in_process, 2),
        "server_passages_per_s": round(server, 2),
        "server_to_in_process": round(server / in_process, 3),
        "all_rates": {k: [round(r, 2) for r in v] for k, v in rates.items()},
        "same_passages": same_passages,
        "min_cosine_between_indexes": cosine,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
