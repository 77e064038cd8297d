"""The Search tab: ranked passages for a query, without an answer; each hit opens its
article at the passage."""

from __future__ import annotations

import html

import gradio as gr

from ..embeddings import EmbeddingMismatchError
from ..index import IndexError_
from ..remote_embeddings import EmbeddingServerError
from .context import UIContext
from .filters import BadDate, applied_note, filter_row, parse_filters
from .render import linked_item, reader_error, render_article, render_hits

MODES = ["hybrid", "dense", "lexical"]

SCROLL_JS = """() => { setTimeout(() => {
  const m = document.querySelector('#search-article-view mark');
  if (m) m.scrollIntoView({block: 'center'}); }, 150); }"""


def search_hits(
    ctx: UIContext,
    query: str,
    mode: str,
    prefs: dict,
    since: str = "",
    until: str = "",
    source: str = "",
) -> tuple[str, list[dict]]:
    """The results' HTML and the hits they link to; ``since/until/source`` are the filter
    row's (a date the reader mistyped is said so, and nothing is searched)."""
    labels, settings = ctx.labels, ctx.settings
    query = " ".join((query or "").split())
    if not query:
        return f"<p>{html.escape(labels['empty_query'])}</p>", []
    if len(query) > settings.max_question_chars:
        too_long = labels["long_query"].format(max=settings.max_question_chars)
        return f"<p>⚠️ {html.escape(too_long)}</p>", []
    try:
        chosen = parse_filters(since, until, source, labels)
    except BadDate as exc:
        return f"<p class='bad-date'>⚠️ {html.escape(str(exc))}</p>", []
    try:
        filters = ctx.engine.filters_for(query, chosen)
        found = ctx.engine.search(query, k=max(5, prefs["k"]), mode=mode, filters=filters)
    except (IndexError_, OSError, EmbeddingServerError, EmbeddingMismatchError) as exc:
        return f"<p>⚠️ {html.escape(reader_error(exc, labels))}</p>", []
    hits = [h.to_dict() for h in found]
    return applied_note(filters, labels) + render_hits(hits, query, labels), hits


def build_search_tab(ctx: UIContext) -> gr.Dropdown:
    """The tab; returns its source dropdown, for the app to refresh with the index."""
    labels = ctx.labels
    hits_state = gr.State([])
    with gr.Tab(labels["search"], id="search"):
        with gr.Row():
            query = gr.Textbox(label=labels["query"], elem_id="search-query", scale=4)
            mode = gr.Radio(MODES, value=ctx.settings.search_mode, label=labels["mode"], scale=2)
        filters = filter_row(ctx, "search")
        find = gr.Button(labels["find"], elem_id="search-button")
        with gr.Row():
            results = gr.HTML(elem_id="search-results")
            article = gr.HTML(elem_id="search-article")
        hit_target = gr.Textbox(elem_id="hit-target", show_label=False, container=False)
        hit_open = gr.Button("hit", elem_id="hit-open")

    def run_search(q: str, m: str, prefs: dict, since=None, until=None, source=None):
        """The filters default to none, so API callers of the search may leave them."""
        return search_hits(ctx, q, m, prefs, since or "", until or "", source or "")

    def open_hit(target: str, hits: list):
        """The linked item's article, the passage highlighted."""
        item = linked_item(target, hits)
        if item is None:
            return gr.update()
        start, end = item["start"], item["end"]
        return render_article(
            ctx.settings, item["file"], start, end, item["text"], labels, "search-article-view"
        )

    for trigger in (find.click, query.submit, filters.since.submit, filters.until.submit):
        inputs = [query, mode, ctx.prefs, *filters.inputs]
        trigger(run_search, inputs, [results, hits_state], concurrency_limit=4)
    hit_open.click(open_hit, [hit_target, hits_state], article).then(None, None, None, js=SCROLL_JS)
    return filters.source
