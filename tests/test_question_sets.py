"""The committed question sets are what ``bench/build_sets.py`` says they are: near-miss
questions name a detail their article lacks, absent articles are not indexed, and the
calibration and test parts split the articles cleanly."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rag.evaluate import answer_correct, load_questions
from rag.lexical import tokenize
from rag.settings import PROJECT_ROOT

XQ = PROJECT_ROOT / "bench" / "data" / "xquad-ru"
DATA = PROJECT_ROOT / "tests" / "data"


def _fold(text: str) -> str:
    return text.lower().replace("ё", "е")


def _mentions(text: str, detail: str) -> bool:
    """A stem from a word start; short details and Roman numerals as whole words."""
    d = _fold(detail)
    before = r"(?<!\d)" if d[0].isdigit() else r"(?<!\w)"
    whole = detail.isupper() or len(d) <= 4
    after = r"(?!\d)" if d[-1].isdigit() else (r"(?!\w)" if whole else "")
    return re.search(before + re.escape(d) + after, _fold(text)) is not None


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _assert_no_near_duplicates(items: list[dict], others: list[dict]) -> None:
    """No question of ``items`` shares most of its words (60 % of the stemmed words of
    both) with one of ``others``: the rule that split calibration from test questions."""
    for q in items:
        words = set(tokenize(q["q"]))
        for other in others:
            theirs = set(tokenize(other["q"]))
            assert len(words & theirs) < 0.6 * len(words | theirs), (q["id"], other["id"])


def test_near_miss_details_are_absent_from_their_articles():
    news = [p.read_text("utf-8") for p in (PROJECT_ROOT / "corpus").glob("*.txt")]
    items = _read(DATA / "nearmiss-calibration.jsonl") + _read(DATA / "nearmiss-test.jsonl")
    assert len(items) == len({q["id"] for q in items}) == 28
    for q in items:
        assert q["kind"] == "nearmiss" and not q["any"] and not q["src"]
        assert not any(_mentions(t, q["detail"]) for t in news), q["id"]
    xq = _read(XQ / "nearmiss.jsonl")
    assert len(items) + len(xq) >= 60
    for q in xq:
        assert not _mentions((XQ / "corpus" / q["article"]).read_text("utf-8"), q["detail"])


def test_xquad_parts_split_articles_and_hold_absent_ones_out_of_the_index():
    indexed = {p.name for p in (XQ / "corpus").glob("*.txt")}
    assert len(indexed) == 18
    parts = {name: load_questions(XQ / f"{name}.jsonl") for name in ("calibration", "test")}
    articles = {
        name: {q["src"][0] if q["src"] else q["article"] for q in items}
        for name, items in parts.items()
    }
    assert not articles["calibration"] & articles["test"]
    every = [q for items in parts.values() for q in items]
    assert len(every) == 612 + 36
    absent = {q["article"] for q in every if q["kind"] == "absent"}
    assert len(absent) == 6 and not absent & indexed
    assert all(q["src"][0] in indexed for q in every if q["kind"] == "fact")
    first = (XQ / "corpus" / "xq00_Super_Bowl_50.txt").read_text("utf-8").splitlines()[0]
    assert first == "Super Bowl 50"  # the title first, like the news corpus


def test_news_off_topic_calibration_questions_are_unanswerable_and_new():
    """The off-topic calibration part: unanswerable questions with ids of their own, none
    repeating a question of another news set, nor sharing most of its words (60 % of the
    stemmed words of both) with one of a test part."""
    items = load_questions(DATA / "offtopic-calibration.jsonl")
    assert len(items) == 30 and all(q["kind"] == "unanswerable" and not q["any"] for q in items)
    others = [
        q
        for name in ("dev", "heldout", "test", "nearmiss-calibration", "nearmiss-test")
        for q in _read(DATA / f"{name}.jsonl")
    ]
    assert not {q["id"] for q in items} & {q["id"] for q in others}
    assert not {_fold(q["q"]) for q in items} & {_fold(q["q"]) for q in others}
    tests = [
        q for name in ("heldout", "test", "nearmiss-test") for q in _read(DATA / f"{name}.jsonl")
    ]
    _assert_no_near_duplicates(items, tests)


def test_readers_parts_are_new_questions_split_cleanly():
    """The readers' parts (written from the five articles alone, before any answer was
    seen): keys occur in their articles, near misses name a detail no article holds, and
    no test question shares most of its words with a calibration question."""
    news = {p.name: p.read_text("utf-8") for p in (PROJECT_ROOT / "corpus").glob("*.txt")}
    cal = _read(DATA / "readers-calibration.jsonl")
    test = _read(DATA / "readers-test.jsonl")
    assert (len(cal), len(test)) == (92, 66)
    for q in cal + test:
        assert q["kind"] in ("fact", "unanswerable", "nearmiss"), q["id"]
        if q["kind"] == "fact":
            assert answer_correct(news[q["src"][0]], q["any"]), q["id"]
        else:
            assert not q["any"] and not q["src"], q["id"]
        if q["kind"] == "nearmiss":
            assert not any(_mentions(t, q["detail"]) for t in news.values()), q["id"]
    others = [
        q
        for name in ("dev", "offtopic-calibration", "nearmiss-calibration")
        for q in _read(DATA / f"{name}.jsonl")
    ]
    ids = [q["id"] for q in cal + test + others]
    assert len(ids) == len(set(ids))
    _assert_no_near_duplicates(test, cal + others)
