"""Citation markers: parse, drop the impossible, check support, re-attribute.

A small model cites the wrong passage now and then. Each answer sentence is
checked against the passages it cites by word overlap (stemmed, numbers must
match exactly); where another retrieved passage supports it and the cited one
does not, the marker is moved; where no passage supports it, the sentence is
marked unsupported. Each citation resolves to the best-supporting sentence span
of its passage in the original article.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from razdel import sentenize

from .chunking import sentence_spans
from .lexical import tokenize

MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
SUPPORT_THRESHOLD = 0.5


@dataclass
class Passage:
    """A piece of an article given to the LLM, with its place in the original file."""

    n: int
    file: str
    title: str
    start: int
    end: int
    text: str
    score: float = 0.0
    dense_score: float | None = None
    date: str | None = None  # the article's date: an answer says when its source ran
    source: str = ""  # the article's outlet
    # other copies of the story (rag.stories): {file, title, date, source}, earliest first
    duplicates: tuple[dict, ...] = ()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["duplicates"] = [dict(d) for d in self.duplicates]
        return data


@dataclass
class Citation:
    """A passage an answer sentence cites, resolved to the article sentence that supports
    it. Only supported sentences cite: an unsupported one is reported as such instead."""

    n: int
    file: str
    title: str
    start: int
    end: int
    text: str
    date: str | None = None  # the cited article's date (ISO, --MM-DD), None unknown
    source: str = ""  # the cited article's outlet, "" when unknown

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Sentence:
    text: str
    cited: list[int] = field(default_factory=list)
    supported: bool = True

    def marked(self) -> str:
        """The sentence with its ``[n]`` markers before its closing punctuation."""
        if not self.cited:
            return self.text
        end = len(self.text.rstrip(".!?…"))
        markers = "".join(f"[{n}]" for n in self.cited)
        return f"{self.text[:end]} {markers}{self.text[end:]}"


def parse_markers(text: str) -> list[int]:
    """All cited numbers in order of appearance: [1], [1, 2], [1][2]."""
    return [int(n) for group in MARKER.findall(text) for n in re.split(r"\s*[,;]\s*", group)]


def strip_markers(text: str) -> str:
    return re.sub(r"\s+([.,;:!?])", r"\1", MARKER.sub("", text)).strip()


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:[.,]\d+)?", text))


def _script(word: str) -> str | None:
    """The script of a word: "cyrillic", "latin", or None for numbers and mixtures."""
    cyrillic = any("\u0400" <= ch <= "\u04ff" for ch in word)
    latin = any("a" <= ch <= "z" for ch in word)
    if cyrillic != latin:
        return "cyrillic" if cyrillic else "latin"
    return None


def support(sentence: str, passage: str) -> float:
    """Share of the sentence's content words found in the passage; 0 if a number is not.

    Words in a script the passage is not written in (an English answer about a Russian
    article) cannot be matched by spelling: the sentence is judged by the others, its
    names and numbers, and is unsupported when none is left."""
    words = set(tokenize(strip_markers(sentence)))
    if not words:
        return 1.0
    numbers = _numbers(strip_markers(sentence))
    if numbers and not numbers & _numbers(passage):
        return 0.0
    known = set(tokenize(passage))
    scripts = [s for s in map(_script, known) if s]
    main = max(set(scripts), key=scripts.count) if scripts else None
    checkable = {w for w in words if w in known or _script(w) in (None, main)}
    return len(checkable & known) / len(checkable) if checkable else 0.0


def best_span(passage: Passage, sentence: str) -> tuple[int, int, str]:
    """The passage sentence that best supports ``sentence``, as offsets in the original."""
    best = (0.0, passage.start, passage.end, passage.text)
    target = set(tokenize(strip_markers(sentence)))
    numbers = _numbers(strip_markers(sentence))
    for a, b in sentence_spans(passage.text):
        span = passage.text[a:b]
        # shared numbers count twice: "с 2014 года … 11" beats a headline with "11" alone
        overlap = len(target & set(tokenize(span))) + len(numbers & _numbers(span))
        if overlap > best[0]:
            best = (overlap, passage.start + a, passage.start + b, passage.text[a:b])
    return best[1], best[2], best[3]


def check_answer(
    answer: str, passages: list[Passage]
) -> tuple[str, list[Sentence], list[Citation]]:
    """Clean the markers of ``answer`` and verify each sentence; returns the answer with
    corrected markers, the per-sentence verdicts and the resolved citations."""
    by_n = {p.n: p for p in passages}
    evidence_numbers = set().union(*(_numbers(p.text) for p in passages))
    sentences: list[Sentence] = []
    for s in sentenize(answer.strip()):
        cited = [n for n in dict.fromkeys(parse_markers(s.text)) if n in by_n]
        plain = strip_markers(s.text)
        if not re.search(r"\w", plain):  # a stray marker or punctuation: nothing to check
            continue
        if _numbers(plain) - evidence_numbers:  # a figure no passage gives is invented
            sentences.append(Sentence(plain, [], False))
            continue
        scores = {p.n: support(plain, p.text) for p in passages}
        good = [n for n in cited if scores[n] >= SUPPORT_THRESHOLD]
        if not good:
            best = max(scores, key=lambda n: scores[n], default=None)
            if best is not None and scores[best] >= SUPPORT_THRESHOLD:
                good = [best]  # re-attribute to the passage that supports it
        sentences.append(Sentence(plain, good, bool(good)))

    text_parts = []
    citations: dict[int, Citation] = {}
    for sentence in sentences:
        text_parts.append(sentence.marked())
        for n in sentence.cited:
            if n not in citations:
                p = by_n[n]
                start, end, span = best_span(p, sentence.text)
                citations[n] = Citation(n, p.file, p.title, start, end, span, p.date, p.source)
    return " ".join(text_parts), sentences, sorted(citations.values(), key=lambda c: c.n)
