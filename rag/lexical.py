"""BM25 over Snowball-stemmed Russian (and English) words.

Dense retrieval misses exact numbers and names; plain BM25 misses inflected forms
("теракт", "терактов"). Stemming every word with the Russian Snowball stemmer
(Latin-script words with the English one), lower-casing, folding ё to е and keeping
numbers as tokens gives a lexical retriever that complements the dense one.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

logging.getLogger("bm25s").setLevel(logging.WARNING)

_WORD = re.compile(r"\w+", re.UNICODE)
_LATIN = re.compile(r"^[a-z]+$")
# Function words that carry no meaning for search (Russian and English).
STOPWORDS = frozenset(
    line.strip()
    for line in (resources.files("rag") / "data" / "stopwords.txt")
    .read_text(encoding="utf-8")
    .splitlines()
    if line.strip() and not line.startswith("#")
)


@lru_cache(maxsize=2)
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(language)


def tokenize(text: str) -> list[str]:
    """Lower-cased, ё→е, stemmed words; numbers kept whole; stop words dropped.

    Tokens are interned: the index keeps every passage's tokens, and at a million passages
    one shared string per word instead of one per occurrence saves gigabytes."""
    words = [w for w in _WORD.findall(text.lower().replace("ё", "е")) if w not in STOPWORDS]
    russian, english = _stemmer("russian"), _stemmer("english")
    return [
        sys.intern(
            w if w.isdigit() else (english.stemWord(w) if _LATIN.match(w) else russian.stemWord(w))
        )
        for w in words
    ]


class LexicalIndex:
    """BM25 scores over a fixed list of passages, with their tokens kept for updates."""

    def __init__(self, tokens: list[list[str]], bm25: bm25s.BM25 | None):
        self.tokens = tokens
        self.bm25 = bm25

    @classmethod
    def build(cls, texts: Sequence[str], tokens: Sequence[list[str] | None] | None = None):
        """Index ``texts``; ``tokens[i]``, where given, is reused instead of re-tokenizing."""
        token_lists = [
            (tokens[i] if tokens is not None and tokens[i] is not None else tokenize(t))
            for i, t in enumerate(texts)
        ]
        if not token_lists:
            return cls([], None)
        bm25 = bm25s.BM25()
        bm25.index(token_lists, show_progress=False)
        return cls(token_lists, bm25)

    def scores(self, query: str) -> np.ndarray:
        """A BM25 score for every passage (zeros when no query word is in the index)."""
        if self.bm25 is None:
            return np.zeros(0, dtype=np.float32)
        words = [w for w in tokenize(query) if w in self.bm25.vocab_dict]
        if not words:
            return np.zeros(len(self.tokens), dtype=np.float32)
        return np.asarray(self.bm25.get_scores(words), dtype=np.float32)

    def coverage(self, query: str) -> float:
        """Share of the query's words that occur in the index (0 for an English query
        over Russian text): how much the lexical ranking can be trusted for this query."""
        words = tokenize(query)
        if not words or self.bm25 is None:
            return 0.0
        return sum(w in self.bm25.vocab_dict for w in words) / len(words)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "tokens.jsonl").open("w", encoding="utf-8") as fh:
            for toks in self.tokens:
                fh.write(json.dumps(toks, ensure_ascii=False) + "\n")
        if self.bm25 is not None:
            self.bm25.save(str(folder / "bm25"))

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        with (folder / "tokens.jsonl").open(encoding="utf-8") as fh:
            tokens = [list(map(sys.intern, json.loads(line))) for line in fh]
        bm25 = bm25s.BM25.load(str(folder / "bm25")) if tokens else None
        return cls(tokens, bm25)
