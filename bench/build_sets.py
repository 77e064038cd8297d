"""Build the external and near-miss question sets (deterministic: fixed seed).

    .venv/bin/python bench/build_sets.py

XQuAD-ru (``bench/data/xquad-ru/``): of the 24 articles, 6 (drawn with the seed) are
held out of the index; their questions become "absent" (unanswerable) questions. The 18
others are written to ``bench/data/xquad-ru/corpus/`` as .txt files, title first, like the
news corpus. Articles are then split in two halves, calibration and test, and every
question (fact, absent, and the hand-written near-miss questions of
``bench/data/xquad-ru/nearmiss.jsonl``) goes with its article. News near-miss questions
(``bench/data/nearmiss-news.jsonl``) are split question by question into
``tests/data/nearmiss-calibration.jsonl`` and ``tests/data/nearmiss-test.jsonl``.
Tune on calibration parts only; report test parts once.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
XQ = ROOT / "bench" / "data" / "xquad-ru"
SEED = 14
ABSENT = 6


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _write(path: Path, items: list[dict]) -> None:
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), "utf-8")


def title(name: str) -> str:
    """'xq08_Sky_United_Kingdom.txt' -> 'Sky United Kingdom'."""
    return Path(name).stem.split("_", 1)[1].replace("_", " ")


def build_xquad() -> dict[str, int]:
    rng = random.Random(SEED)
    articles = sorted(p.name for p in (XQ / "articles").glob("*.txt"))
    absent = set(rng.sample(articles, ABSENT))
    indexed = [a for a in articles if a not in absent]
    calibration = set(rng.sample(indexed, len(indexed) // 2))
    calibration |= set(rng.sample(sorted(absent), ABSENT // 2))
    corpus = XQ / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir()
    for name in indexed:
        text = (XQ / "articles" / name).read_text("utf-8")
        (corpus / name).write_text(f"{title(name)}\n\n{text}", "utf-8")
    parts: dict[str, list[dict]] = {"calibration": [], "test": []}
    for q in _read(XQ / "questions.jsonl"):
        article = q["src"][0]
        if article in absent:
            q = {**q, "kind": "absent", "any": [], "src": [], "article": article}
        parts["calibration" if article in calibration else "test"].append(q)
    for q in _read(XQ / "nearmiss.jsonl"):
        assert q["article"] in indexed, q["id"]
        parts["calibration" if q["article"] in calibration else "test"].append(q)
    for name, items in parts.items():
        _write(XQ / f"{name}.jsonl", items)
    return {name: len(items) for name, items in parts.items()}


def build_news_nearmiss() -> dict[str, int]:
    items = _read(ROOT / "bench" / "data" / "nearmiss-news.jsonl")
    random.Random(SEED).shuffle(items)
    half = len(items) // 2
    parts = {"calibration": items[:half], "test": items[half:]}
    for name, part in parts.items():
        _write(
            ROOT / "tests" / "data" / f"nearmiss-{name}.jsonl", sorted(part, key=lambda q: q["id"])
        )
    return {name: len(part) for name, part in parts.items()}


if __name__ == "__main__":
    print("xquad-ru:", build_xquad())
    print("news near-miss:", build_news_nearmiss())
