"""The Search tab: ranked passages for a query, without an answer."""

from __future__ import annotations

import html

import gradio as gr

from ..index import IndexError_
from .context import UIContext
from .render import render_passages

MODES = ["hybrid", "dense", "lexical"]


def search_html(ctx: UIContext, query: str, mode: str, prefs: dict) -> str:
    labels, settings = ctx.labels, ctx.settings
    query = " ".join((query or "").split())
    if not query:
        return f"<p>{html.escape(labels['empty_query'])}</p>"
    if len(query) > settings.max_question_chars:
        return (
            f"<p>⚠️ {html.escape(labels['long_query'].format(max=settings.max_question_chars))}</p>"
        )
    try:
        hits = ctx.engine.search(query, k=max(5, prefs["k"]), mode=mode)
    except IndexError_ as exc:
        return f"<p>⚠️ {html.escape(str(exc))}</p>"
    return render_passages([h.to_dict() for h in hits], labels["none"])


def build_search_tab(ctx: UIContext) -> None:
    labels = ctx.labels
    with gr.Tab(labels["search"], id="search"):
        with gr.Row():
            query = gr.Textbox(label=labels["query"], elem_id="search-query", scale=4)
            mode = gr.Radio(MODES, value=ctx.settings.search_mode, label=labels["mode"], scale=2)
        find = gr.Button(labels["find"], elem_id="search-button")
        results = gr.HTML(elem_id="search-results")

    def run_search(q: str, m: str, prefs: dict) -> str:
        return search_html(ctx, q, m, prefs)

    for trigger in (find.click, query.submit):
        trigger(run_search, [query, mode, ctx.prefs], results, concurrency_limit=4)
