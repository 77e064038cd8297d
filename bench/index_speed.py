"""Indexing benchmark: chunks per second and peak memory.

    .venv/bin/python bench/index_speed.py                 # default corpus
    .venv/bin/python bench/index_speed.py --articles 2000 # synthetic corpus from the real one

The synthetic corpus recombines paragraphs of the real articles (fixed seed), so
its text has the same language and length distribution.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.corpus import read_corpus
from rag.engine import Engine
from rag.processes import peak_rss_mb
from rag.settings import PROJECT_ROOT, Settings


def corpus_paragraphs() -> tuple[list, list[str]]:
    """The default corpus's articles and their real paragraphs, to build synthetic ones."""
    docs, _ = read_corpus(PROJECT_ROOT / "corpus")
    paragraphs = [
        line.strip()
        for d in docs
        for s, e in d.sections
        for line in d.original[s:e].splitlines()
        if len(line.split()) > 8
    ]
    return docs, paragraphs


def synthetic_corpus(target: Path, articles: int, seed: int = 13) -> None:
    docs, paragraphs = corpus_paragraphs()
    titles = [d.title for d in docs]
    rng = random.Random(seed)
    target.mkdir(parents=True, exist_ok=True)
    for i in range(articles):
        body = rng.sample(paragraphs, k=rng.randint(2, 3))
        text = (
            f"{rng.choice(titles)} (выпуск {i})\n\n" + "\n\n".join(body) + f"\n\nМатериал №{i}.\n"
        )
        (target / f"synthetic_{i:05d}.txt").write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--articles", type=int, default=0, help="synthetic articles (0: real corpus)"
    )
    parser.add_argument("--embedding-model", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        corpus = PROJECT_ROOT / "corpus"
        if args.articles:
            corpus = Path(tmp) / "corpus"
            synthetic_corpus(corpus, args.articles)
        settings = Settings.from_env(
            corpus_dir=corpus, index_dir=Path(tmp) / "index", embedding_model=args.embedding_model
        )
        engine = Engine(settings)
        started = time.perf_counter()
        engine.embedder  # noqa: B018 - load the model outside the timed build
        load_s = time.perf_counter() - started
        rss_after_load = peak_rss_mb()
        report = engine.build_index(progress=False)
        again = time.perf_counter()
        engine.build_index()
        noop_s = time.perf_counter() - again

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"embedding model: {settings.embedding_model} ({engine.embedder.dtype})")
    print(f"articles: {report.files_total}, chunks: {report.chunks_total}")
    print(f"model load: {load_s:.1f} s")
    print(
        f"full build: {report.seconds:.1f} s, {report.chunks_total / report.seconds:.2f} chunks/s"
    )
    print(f"no-change rebuild: {noop_s:.2f} s")
    print(f"peak RSS: {peak_rss_mb():.0f} MB (after model load: {rss_after_load:.0f} MB)")


if __name__ == "__main__":
    main()
