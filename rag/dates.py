"""Publication dates from a plain-text dateline ("НУР-СУЛТАН, 01 октября. …").

A wire dateline opens a paragraph: an optional place in capitals, a comma, then a
day and a month name, sometimes a year. The year is kept only when written; a
dateline without one gives a partial date ``--MM-DD`` (ISO 8601 for "year unknown"),
never a year guessed from the clock. Dates inside the story ("11 декабря суд
признал …") are events, not the publication date, so only paragraph openings count.
"""

from __future__ import annotations

import re
from functools import lru_cache

_MONTH = (
    r"(?:январ|феврал|март|апрел|ма[йя]|июн|июл|август|сентябр|октябр|ноябр|декабр)[а-я]*"
    r"|(?:january|february|march|april|may|june|july|august|september|october|november"
    r"|december)"
)
# place (capitals, hyphens, spaces) + comma, or nothing; then "01 октября [2019 [г.]]"
DATELINE = re.compile(
    rf"^(?:[A-ZА-ЯЁӘҒҚҢӨҰҮҺІ][A-ZА-ЯЁӘҒҚҢӨҰҮҺІ\- ]{{1,40}},\s*)?"
    rf"(?P<day>\d{{1,2}})\s+(?P<month>(?i:{_MONTH}))(?:\s+(?P<year>(?:19|20)\d\d))?\b",
    re.MULTILINE,  # the place is in capitals: case matters there
)
# paragraphs of the opening looked at: a dateline is in the first lines or not at all
OPENING_LINES = 4


@lru_cache(maxsize=1)
def _parser():
    import dateparser

    return dateparser


def parse_day_month(day: str, month: str, year: str | None) -> str:
    """ISO ``YYYY-MM-DD``, or ``--MM-DD`` without a year; "" when not a real date."""
    parsed = _parser().parse(
        f"{day} {month} {year or 2000}",  # a leap year, so 29 февраля parses
        languages=["ru", "en"],
        settings={"REQUIRE_PARTS": ["day", "month", "year"]},
    )
    if parsed is None:
        return ""
    return parsed.date().isoformat() if year else f"--{parsed.month:02d}-{parsed.day:02d}"


def find_date(text: str) -> str:
    """The dateline date of an article's opening paragraphs, or "" when there is none."""
    lines = [line.strip() for line in text.splitlines() if line.strip()][:OPENING_LINES]
    for line in lines:
        match = DATELINE.match(line)
        if match and (match.group(0).count(",") or line is lines[0] or match.group("year")):
            return parse_day_month(match["day"], match["month"], match["year"])
    return ""


def year_of(date: str) -> int | None:
    """The year of an ISO or partial date, None when unknown."""
    return int(date[:4]) if len(date) >= 4 and date[:4].isdigit() else None
