"""Split article sections into passages on Russian sentence boundaries.

A chunk is a contiguous span of the original file (``original[start:end]`` is its
text), at most ``max_tokens`` tokens of the embedding model, and repeats the last
``overlap`` sentences of the previous chunk of the same section so that a fact
split across a boundary is still found whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from razdel import sentenize

from .corpus import Document

TokenCounter = Callable[[Sequence[str]], list[int]]


@dataclass(frozen=True, slots=True)
class Chunk:
    file: str
    title: str
    chunk: int  # number within its file, from 0
    start: int  # character offsets into the original file text
    end: int
    text: str

    def to_dict(self) -> dict:
        return asdict(self)


def whitespace_tokens(texts: Sequence[str]) -> list[int]:
    """A stand-in token counter (words); the real one comes from the embedding model."""
    return [len(t.split()) for t in texts]


def sentence_spans(text: str, base: int = 0) -> list[tuple[int, int]]:
    """Sentences (razdel) within each line: a headline without a full stop is its own."""
    spans = []
    pos = 0
    for line in text.splitlines(keepends=True):
        # razdel yields an empty "sentence" for a blank line: it is not one (an empty unit
        # would become an empty chunk, or the only "overlap" between two chunks).
        spans.extend(
            (base + pos + s.start, base + pos + s.stop) for s in sentenize(line) if s.text.strip()
        )
        pos += len(line)
    return spans


def _split_long(
    original: str, span: tuple[int, int], max_tokens: int, count: TokenCounter
) -> list[tuple[int, int]]:
    """Cut a sentence longer than the budget at word boundaries."""
    start, end = span
    words: list[tuple[int, int]] = []
    pos = start
    for word in original[start:end].split():
        ws = original.index(word, pos)
        words.append((ws, ws + len(word)))
        pos = ws + len(word)
    pieces: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        lo, hi = i + 1, len(words)
        # largest j with tokens(words[i:j]) <= budget, found by binary search
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count([original[words[i][0] : words[mid - 1][1]]])[0] <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        pieces.append((words[i][0], words[lo - 1][1]))
        i = lo
    return pieces


def chunk_document(
    doc: Document, count: TokenCounter, max_tokens: int = 160, overlap: int = 1
) -> list[Chunk]:
    """Pack the sentences of each section greedily into chunks within the token budget."""
    chunks: list[Chunk] = []
    for sec_start, sec_end in doc.sections:
        spans = sentence_spans(doc.original[sec_start:sec_end], sec_start)
        sizes = count([doc.original[s:e] for s, e in spans])
        units: list[tuple[int, int, int]] = []
        for (s, e), n in zip(spans, sizes, strict=True):
            if n <= max_tokens:
                units.append((s, e, n))
            else:
                parts = _split_long(doc.original, (s, e), max_tokens, count)
                part_sizes = count([doc.original[ps:pe] for ps, pe in parts])
                units.extend((ps, pe, pn) for (ps, pe), pn in zip(parts, part_sizes, strict=True))
        i = 0
        while i < len(units):
            j, total = i, 0
            while j < len(units) and total + units[j][2] <= max_tokens:
                total += units[j][2]
                j += 1
            j = max(j, i + 1)
            # Separators between sentences cost tokens too: shrink until the span fits.
            while (
                j > i + 1 and count([doc.original[units[i][0] : units[j - 1][1]]])[0] > max_tokens
            ):
                j -= 1
            start, end = units[i][0], units[j - 1][1]
            chunks.append(
                Chunk(doc.file, doc.title, len(chunks), start, end, doc.original[start:end])
            )
            if j >= len(units):
                break
            # Overlap: step back a few sentences, but always move forward, and only as far
            # as still leaves room for the next sentence (else the next chunk only repeats),
            # by both measures the packing above uses: the sum of sentence sizes and the
            # size of the joined text (they differ: separators count, tokenizers merge).
            back = min(overlap, j - i - 1)
            while back > 0 and (
                sum(u[2] for u in units[j - back : j]) > max_tokens // 2
                or sum(u[2] for u in units[j - back : j + 1]) > max_tokens
                or count([doc.original[units[j - back][0] : units[j][1]]])[0] > max_tokens
            ):
                back -= 1
            i = j - back
    return chunks
