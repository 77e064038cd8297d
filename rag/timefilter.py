"""Date and outlet filters, and time expressions in a question ("в 2015 году", "in 2019").

A filter from the command line (``--since/--until/--source``) is strict: an article
whose date is unknown cannot be shown to fall in the range and is left out. A filter
read from the question is a hint: articles with no known year stay in (they may be
from then), dated articles outside the range go. Relative expressions ("в прошлом
месяце", "last year") resolve against the newest article date, never the clock.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Filters:
    since: str | None = None  # ISO date, inclusive
    until: str | None = None  # ISO date, inclusive
    source: str | None = None  # outlet name, matched case-insensitively as a substring
    expression: str = ""  # the words of the question it came from, "" for explicit filters
    strict: bool = True  # drop articles of unknown date

    def __bool__(self) -> bool:
        return bool(self.since or self.until or self.source)

    def to_dict(self) -> dict:
        return asdict(self)

    def merged(self, other: Filters | None) -> Filters:
        """Explicit filters win over those read from the question."""
        if not other:
            return self
        return Filters(
            self.since or other.since,
            self.until or other.until,
            self.source or other.source,
            other.expression,
            self.strict if (self.since or self.until) else other.strict,
        )

    def allows(self, article_date: str | None, source: str = "") -> bool:
        if self.source and self.source.casefold() not in (source or "").casefold():
            return False
        if not (self.since or self.until):
            return True
        if not article_date or not article_date[:4].isdigit():  # unknown or --MM-DD
            return not self.strict
        day = article_date[:10]
        if len(day) == 4:
            day += "-01-01"
        return (not self.since or day >= self.since) and (not self.until or day <= self.until)


def _iso(value: str, end: bool = False) -> str:
    """``2015`` → 2015-01-01 (or -12-31 for an end), ``2015-03`` → first/last day."""
    value = value.strip()
    if re.fullmatch(r"\d{4}", value):
        return f"{value}-12-31" if end else f"{value}-01-01"
    if re.fullmatch(r"\d{4}-\d{2}", value):
        first = date.fromisoformat(value + "-01")
        if not end:
            return first.isoformat()
        return (_next_month(first) - timedelta(days=1)).isoformat()
    return date.fromisoformat(value).isoformat()  # raises ValueError with a clear message


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def explicit(
    since: str | None = None, until: str | None = None, source: str | None = None
) -> Filters | None:
    """Filters from ``--since/--until/--source`` (YYYY, YYYY-MM or YYYY-MM-DD)."""
    try:
        f = Filters(
            _iso(since) if since else None, _iso(until, end=True) if until else None, source
        )
    except ValueError as exc:
        raise ValueError(f"dates are YYYY, YYYY-MM or YYYY-MM-DD ({exc})") from exc
    return f or None


_YEAR = r"((?:19|20)\d\d)"
_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(rf"\b(?:с|начиная с|since|from)\s+{_YEAR}(?:\s*(?:года|г\.?))?", re.I), "since"),
    (re.compile(rf"\b(?:до|раньше|before|until)\s+{_YEAR}(?:\s*(?:года|г\.?))?", re.I), "before"),
    (re.compile(rf"\b(?:в|во|за|in|during)\s+{_YEAR}(?:\s*(?:году|г\.?))?", re.I), "in"),
    (re.compile(r"\b(?:в|за)\s+прошлом\s+месяце|\blast\s+month\b", re.I), "last_month"),
    (re.compile(r"\b(?:в|за)\s+прошлом\s+году|\blast\s+year\b", re.I), "last_year"),
    (re.compile(r"\b(?:в|за)\s+этом\s+году|\bthis\s+year\b", re.I), "this_year"),
]


def from_question(question: str, newest: str | None) -> Filters | None:
    """The first time expression of ``question`` as a lenient filter, or None.

    ``newest`` is the newest full article date (ISO); relative expressions need it and
    are ignored without it.
    """
    for pattern, kind in _PATTERNS:
        match = pattern.search(question)
        if not match:
            continue
        words = match.group(0)
        if kind == "since":
            return Filters(since=_iso(match[1]), expression=words, strict=False)
        if kind == "before":
            return Filters(
                until=_iso(str(int(match[1]) - 1), end=True), expression=words, strict=False
            )
        if kind == "in":
            return Filters(_iso(match[1]), _iso(match[1], end=True), expression=words, strict=False)
        if not newest:
            continue
        ref = date.fromisoformat(newest[:10])
        if kind == "last_month":
            first = date(ref.year, ref.month, 1)
            prev = first - timedelta(days=1)
            month = f"{prev.year}-{prev.month:02d}"
            return Filters(_iso(month), _iso(month, end=True), expression=words, strict=False)
        year = str(ref.year - (kind == "last_year"))
        return Filters(_iso(year), _iso(year, end=True), expression=words, strict=False)
    return None


def newest_date(documents: dict[str, dict]) -> str | None:
    """The newest full (year-known) date among the index's articles."""
    dates = [d.get("date") or "" for d in documents.values()]
    full = [d for d in dates if len(d) >= 10 and d[:4].isdigit()]
    return max(full) if full else None


def filters_for(
    question: str,
    documents: dict,
    explicit: Filters | None = None,
    read_question: bool = True,
) -> Filters | None:
    """The filters a search for ``question`` uses: ``explicit`` ones plus a time
    expression in the question ("в 2015 году"), relative ones resolved against the
    newest date among ``documents`` (the index manifest's). Returned so a caller can
    show them; ``read_question=False`` drops the question's (the reader removed it)."""
    if not read_question:
        return explicit or None
    found = from_question(question, newest_date(documents))
    if explicit:
        return explicit.merged(found)
    return found
