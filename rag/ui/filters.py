"""The date and outlet filter row (chat and search tabs) and the chip naming a time filter
read from a question. The filters themselves are ``rag.timefilter``'s, as the CLI's."""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass

import gradio as gr

from ..index import IndexError_
from ..timefilter import Filters, explicit
from .context import UIContext

log = logging.getLogger(__name__)

ALL = ""  # the source dropdown's value for "all outlets"


@dataclass
class FilterRow:
    since: gr.Textbox
    until: gr.Textbox
    source: gr.Dropdown

    @property
    def inputs(self) -> list:
        return [self.since, self.until, self.source]


class BadDate(ValueError):
    """A date box holds something that is not YYYY, YYYY-MM or YYYY-MM-DD."""

    def __init__(self, value: str, labels: dict):
        super().__init__(labels["bad_date"].format(value=value))


def outlet_choices(ctx: UIContext) -> list[tuple[str, str]]:
    """ "All sources" and every outlet of the index (none yet without an index)."""
    try:
        outlets = ctx.engine.outlets()
    except (IndexError_, OSError) as exc:
        log.info("no outlets to offer: %s", exc)
        outlets = []
    return [(ctx.labels["all_sources"], ALL), *((name, name) for name in outlets)]


def filter_row(ctx: UIContext, prefix: str) -> FilterRow:
    """Since / until / source, inside the caller's layout; ids start with ``prefix``."""
    labels = ctx.labels
    with gr.Row(elem_id=f"{prefix}-filters", equal_height=True):
        since = gr.Textbox(
            label=labels["since"],
            placeholder=labels["date_placeholder"],
            elem_id=f"{prefix}-since",
            max_lines=1,
            scale=1,
        )
        until = gr.Textbox(
            label=labels["until"],
            placeholder=labels["date_placeholder"],
            elem_id=f"{prefix}-until",
            max_lines=1,
            scale=1,
        )
        source = gr.Dropdown(
            [(labels["all_sources"], ALL)],  # the index's outlets come when a page loads
            value=ALL,
            label=labels["source"],
            elem_id=f"{prefix}-source",
            scale=1,
        )
    return FilterRow(since, until, source)


def parse_filters(since: str, until: str, source: str, labels: dict) -> Filters | None:
    """The row's values as the CLI's ``--since/--until/--source`` Filters, or BadDate."""
    since, until = (since or "").strip(), (until or "").strip()
    for value, end in ((since, False), (until, True)):
        if value:
            try:
                explicit(**({"until": value} if end else {"since": value}))
            except ValueError:
                raise BadDate(value, labels) from None
    return explicit(since or None, until or None, (source or ALL) or None)


def _year(iso: str | None, month_day: str) -> str | None:
    """The year of ``iso`` when it is that year's ``month_day`` (a whole-year bound)."""
    return iso[:4] if iso and iso[4:] == month_day else None


def describe(filters: dict | Filters | None, labels: dict) -> str:
    """The dates of a filter as a reader says them: «2015 г.», «с 2014 г.», «2015-12» (a
    month), «с 2015-03-05 по 2015-04-01»."""
    f = filters.to_dict() if isinstance(filters, Filters) else (filters or {})
    since, until = f.get("since"), f.get("until")
    first, last = _year(since, "-01-01"), _year(until, "-12-31")
    if first and first == last:
        return labels["chip_year"].format(year=first)
    month = since and until and since[:7] == until[:7] and since[8:] == "01"
    if month and until == explicit(until=until[:7]).until:  # the whole month
        return since[:7]
    whole_years = (first or not since) and (last or not until)
    parts = []
    if since:
        parts.append(
            labels["chip_from_year"].format(year=first)
            if whole_years
            else labels["chip_since"].format(date=since)
        )
    if until:
        parts.append(
            labels["chip_to_year"].format(year=last)
            if whole_years
            else labels["chip_until"].format(date=until)
        )
    return " ".join(parts)


CHIP_HIDDEN = (gr.update(visible=False), gr.update(), gr.update())


def question_chip(filters: dict | None, labels: dict) -> tuple:
    """Updates of the chip's row, its note and its button: shown with the words and the
    dates of a time filter the question added (``expression`` set), hidden otherwise."""
    if not filters or not filters.get("expression"):
        return CHIP_HIDDEN
    words = f"<span class='doc'>{html.escape(filters['expression'])}</span>"  # the reader's
    note = labels["chip_note"].format(expression=words)
    return gr.update(visible=True), note, f"{describe(filters, labels)} ✕"


def applied_note(filters: Filters | None, labels: dict) -> str:
    """One line above search results naming the filter applied ("" for none)."""
    if not filters:
        return ""
    what = html.escape(describe(filters, labels))
    if filters.source:  # an outlet's name and the question's words are the articles' own
        source = f"<span class='doc'>{html.escape(filters.source)}</span>"
        what = f"{what}, {source}" if what else source
    if filters.expression:
        what += f" (<span class='doc'>{html.escape(filters.expression)}</span>)"
    return f"<p class='applied'><small>{labels['applied_filters'].format(what=what)}</small></p>"
