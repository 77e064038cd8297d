"""A chronological list of dated sentences about a name or query, each with its citation.

The sentences come from the articles whose text holds all the query's (stemmed) words;
a sentence is kept when it mentions one of them. Its date is the article's date, or a
year the sentence itself names ("в 2015 году") when the article has none; undated
sentences are left out, since a timeline cannot place them. Offsets point into the
article text the index keeps, like any citation.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .chunking import sentence_spans
from .lexical import tokenize

_YEAR_IN_TEXT = re.compile(r"\b(?:в|с|к|на)\s+((?:19|20)\d\d)\s*(?:году|года|г\.)", re.I)


@dataclass
class Entry:
    date: str  # ISO date, or YYYY when only the year is known
    file: str
    title: str
    start: int
    end: int
    text: str
    source: str = ""
    date_from: str = "article"  # "article" (publication date) or "sentence" (a year it names)

    def to_dict(self) -> dict:
        return asdict(self)


def article_texts(index) -> dict[str, str]:
    """Every indexed article's text (see ``Snapshot.article_texts``)."""
    return index.article_texts()


def build(index, query: str) -> list[Entry]:
    """Dated sentences of the articles matching ``query``, oldest first."""
    words = set(tokenize(query))
    if not words:
        return []
    documents = index.manifest.get("documents", {})
    entries: list[Entry] = []
    for file, text in article_texts(index).items():
        if not words <= set(tokenize(text)):
            continue
        meta = documents.get(file, {})
        article_date = meta.get("date") or ""
        year_known = article_date[:4].isdigit()
        for start, end in sentence_spans(text):
            sentence = text[start:end]
            if not words & set(tokenize(sentence)):
                continue
            date, date_from = (article_date, "article") if year_known else ("", "")
            if not date:
                named = _YEAR_IN_TEXT.search(sentence)
                if named:
                    date, date_from = named[1], "sentence"
            if date:
                entries.append(
                    Entry(
                        date,
                        file,
                        meta.get("title", ""),
                        start,
                        end,
                        sentence,
                        meta.get("source", ""),
                        date_from,
                    )
                )
    entries.sort(key=lambda e: (e.date, e.file, e.start))
    return entries
