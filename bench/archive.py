"""Archive benchmark: a mixed folder of HTML, PDF, DOCX and text articles, indexed twice.

    .venv/bin/python bench/archive.py --articles 2000
    .venv/bin/python bench/archive.py --articles 100   # on a busy machine

Articles recombine paragraphs of the real corpus (fixed seed), a quarter in each
format, each dated and with an outlet. The first build reads and embeds everything
(with a progress bar); then every 20th text or HTML file is rewritten and the second build
re-reads all files but embeds only the changed ones.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.index_speed import corpus_paragraphs
from rag.engine import Engine
from rag.settings import Settings
from tests.archive_files import docx_file, news_page, pdf_file

OUTLETS = ["Tengrinews", "Kazinform", "Zakon.kz", "Informburo"]


def mixed_corpus(target: Path, articles: int, seed: int = 15) -> None:
    docs, paragraphs = corpus_paragraphs()
    rng = random.Random(seed)
    target.mkdir(parents=True, exist_ok=True)
    for i in range(articles):
        title = f"{rng.choice([d.title for d in docs])} ({i})"
        body = rng.sample(paragraphs, k=min(len(paragraphs), rng.randint(3, 7)))
        day = f"20{rng.randint(14, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        kind = i % 4
        if kind == 0:
            data, ext = news_page(title, body, day + "T10:00:00+06:00", rng.choice(OUTLETS)), "html"
        elif kind == 1:
            data, ext = pdf_file(title, body), "pdf"
        elif kind == 2:
            data, ext = docx_file(title, body), "docx"
        else:
            data, ext = "\n\n".join([title, *body]).encode(), "txt"
        (target / f"{i:05d}.{ext}").write_bytes(data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        mixed_corpus(root / "corpus", args.articles)
        generated = time.perf_counter() - started
        settings = Settings.from_env(corpus_dir=root / "corpus", index_dir=root / "index")
        engine = Engine(settings)
        first = engine.build_index(progress=True)
        files = sorted(p for p in (root / "corpus").iterdir() if p.suffix in (".txt", ".html"))
        changed = files[:: max(1, len(files) // max(1, len(files) // 20))]
        for path in changed:
            if path.suffix == ".txt":
                path.write_text(path.read_text("utf-8") + "\n\nДополнено.", "utf-8")
            else:
                path.write_bytes(path.read_bytes() + b"\n")  # new bytes, same content
        second = engine.build_index(progress=True)
        documents = engine.index.manifest["documents"]
        dated = sum(1 for d in documents.values() if d.get("date"))
        machine = f"{platform.machine()} {platform.processor()}".strip()
        print(f"machine: {machine}, python {platform.python_version()}")
        print(f"articles: {args.articles} (generated in {generated:.1f} s)")
        print(
            f"first build: {first.seconds:.1f} s, {first.chunks_total} chunks, "
            f"{len(first.files_skipped)} skipped"
        )
        print(
            f"second build ({len(changed)} files changed): {second.seconds:.1f} s, "
            f"{len(second.files_embedded)} re-embedded, {len(second.files_reused)} reused"
        )
        print(f"articles with a date: {dated} of {len(documents)}")


if __name__ == "__main__":
    main()
