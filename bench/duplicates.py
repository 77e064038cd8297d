"""How alike copies of one story are, against distinct articles: the near-duplicate
threshold (``rag.stories.THRESHOLD``) is chosen from this.

    .venv/bin/python bench/duplicates.py [--articles 2000]

Copies are made from the 5 news articles of ``corpus/`` and the 24 XQuAD-ru articles
(fixed seed), the way a story is re-published: another headline (and an outlet line), a
few words changed, a sentence dropped, or all of these; and, for where the threshold
stands, a rewrite (a fifth of the words changed) and an abridged copy (its first half).
Distinct pairs are every pair of those 29 articles and every pair of the 120 XQuAD-ru
paragraphs (paragraphs of one Wikipedia article share their topic and names). For each
kind the true Jaccard of the word-shingle sets and the MinHash estimate the index uses
are shown. Last, the time ``rag.stories.find`` takes on ``--articles`` texts of 300 words
drawn from the corpus's words (it runs on every build that changes something).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import time
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.chunking import sentence_spans
from rag.corpus import Document, parse
from rag.settings import PROJECT_ROOT
from rag.stories import (
    NUM_PERM,
    SHINGLE_WORDS,
    THRESHOLD,
    find,
    jaccard,
    shingles,
    signature,
    words,
)

XQUAD = PROJECT_ROOT / "bench" / "data" / "xquad-ru" / "articles"
OUTLETS = ["Kazinform", "Zakon.kz", "Informburo", "Vlast.kz"]


def articles() -> list[str]:
    """Cleaned texts: the news corpus, then XQuAD-ru articles (title line first)."""
    paths = sorted((PROJECT_ROOT / "corpus").glob("*.txt")) + sorted(XQUAD.glob("*.txt"))
    texts = []
    for path in paths:
        doc = parse(path.name, path.read_bytes())
        text = doc.text
        if path.parent == XQUAD:  # no headline of their own: the file name stands for one
            text = path.stem.split("_", 1)[1].replace("_", " ") + "\n" + text
        texts.append(text)
    return texts


def new_headline(text: str, rng: random.Random) -> str:
    title, _, body = text.partition("\n")
    words = title.split()
    rng.shuffle(words)
    return " ".join(["Срочно:", *words, "— подробности"]) + "\n" + body


def change_words(text: str, n: int, rng: random.Random) -> str:
    words = text.split(" ")
    for i in rng.sample(range(len(words)), min(n, len(words))):
        words[i] = rng.choice(["также", "около", "более", "новый", "этот", "2016"])
    return " ".join(words)


def drop_sentence(text: str, rng: random.Random) -> str:
    spans = sentence_spans(text)
    if len(spans) < 3:
        return text
    start, end = spans[rng.randrange(1, len(spans) - 1)]
    return text[:start] + text[end:]


def variants(text: str, rng: random.Random) -> dict[str, str]:
    outlet = f"\nИсточник: {rng.choice(OUTLETS)}"
    return {
        "another headline": new_headline(text, rng),
        "5 words changed": change_words(text, 5, rng),
        "a sentence dropped": drop_sentence(text, rng),
        "syndicated (headline, outlet, 3 words)": change_words(new_headline(text, rng), 3, rng)
        + outlet,
        "lightly edited (5 words, a sentence)": drop_sentence(change_words(text, 5, rng), rng),
        "rewritten (20% of words changed)": change_words(text, len(text.split()) // 5, rng),
        "cut to its first half": text[: len(text) // 2],
    }


def row(name: str, exact: list[float], estimated: list[float], copies: bool) -> str:
    grouped = sum(e >= THRESHOLD for e in estimated)
    what = "grouped" if copies else "wrongly grouped"
    return (
        f"| {name} | {len(exact)} | {min(exact):.2f} | {statistics.median(exact):.2f} | "
        f"{max(exact):.2f} | {min(estimated):.2f}–{max(estimated):.2f} | "
        f"{grouped} {what} |"
    )


def find_cost(texts: list[str], articles: int, rng: random.Random) -> str:
    vocabulary = [w for text in texts for w in words(text)]
    docs = []
    for i in range(articles):
        text = " ".join(rng.choices(vocabulary, k=300))
        sha = hashlib.sha256(text.encode()).hexdigest()
        docs.append(Document(f"{i:05d}.txt", text, "utf-8", sha, "", [(0, len(text))]))
    started = time.perf_counter()
    stories = find(docs)
    seconds = time.perf_counter() - started
    return (
        f"find() on {articles} articles of 300 words: {seconds:.2f} s "
        f"({1000 * seconds / articles:.2f} ms per article), {len(stories.groups)} stories"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(15)
    texts = articles()
    print(f"word {SHINGLE_WORDS}-shingles, MinHash {NUM_PERM} permutations, threshold {THRESHOLD}")
    print()
    print("| pairs | n | Jaccard min | median | max | MinHash estimate | at the threshold |")
    print("|---|---|---|---|---|---|---|")
    kinds: dict[str, tuple[list[float], list[float]]] = {}
    for text in texts:
        base, base_hash = shingles(text), signature(text)
        for kind, copy in variants(text, rng).items():
            exact, estimated = kinds.setdefault(kind, ([], []))
            exact.append(jaccard(base, shingles(copy)))
            estimated.append(base_hash.jaccard(signature(copy)))
    for kind, (exact, estimated) in kinds.items():
        print(row(kind, exact, estimated, copies=True))

    def distinct(items: list[str]) -> tuple[list[float], list[float]]:
        sets = [shingles(t) for t in items]
        hashes = [signature(t) for t in items]
        pairs = list(combinations(range(len(items)), 2))
        return (
            [jaccard(sets[a], sets[b]) for a, b in pairs],
            [hashes[a].jaccard(hashes[b]) for a, b in pairs],
        )

    print(row("distinct articles", *distinct(texts), copies=False))
    paragraphs = [
        p for path in sorted(XQUAD.glob("*.txt")) for p in path.read_text("utf-8").split("\n\n")
    ]
    paragraphs = [p for p in paragraphs if p.strip()]
    print(row("distinct paragraphs (XQuAD-ru)", *distinct(paragraphs), copies=False))
    print()
    print(find_cost(texts, args.articles, rng))


if __name__ == "__main__":
    main()
