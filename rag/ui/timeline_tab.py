"""The Timeline tab: ``Engine.timeline`` for a name or topic, oldest first; each sentence
opens its article with the sentence highlighted, like a citation."""

from __future__ import annotations

import html

import gradio as gr

from ..index import IndexError_
from .context import UIContext
from .render import linked_item, reader_error, render_article, render_timeline

SCROLL_JS = """() => { setTimeout(() => {
  const m = document.querySelector('#timeline-article-view mark');
  if (m) m.scrollIntoView({block: 'center'}); }, 150); }"""


def timeline_entries(ctx: UIContext, query: str) -> tuple[str, list[dict]]:
    """The timeline's HTML and the entries its links open."""
    labels, settings = ctx.labels, ctx.settings
    query = " ".join((query or "").split())
    if not query:
        return f"<p>{html.escape(labels['empty_query'])}</p>", []
    if len(query) > settings.max_question_chars:
        too_long = labels["long_query"].format(max=settings.max_question_chars)
        return f"<p>⚠️ {html.escape(too_long)}</p>", []
    try:
        entries = [e.to_dict() for e in ctx.engine.timeline(query)]
    except (IndexError_, OSError) as exc:
        return f"<p>⚠️ {html.escape(reader_error(exc, labels))}</p>", []
    return render_timeline(entries, query, labels), entries


def build_timeline_tab(ctx: UIContext) -> None:
    labels = ctx.labels
    entries_state = gr.State([])
    with gr.Tab(labels["timeline"], id="timeline"):
        with gr.Row(equal_height=True):
            query = gr.Textbox(
                label=labels["timeline_query"],
                placeholder=labels["timeline_placeholder"],
                elem_id="timeline-query",
                max_lines=1,
                scale=4,
            )
            build = gr.Button(
                labels["timeline_button"], variant="primary", elem_id="timeline-button", scale=1
            )
        with gr.Row():
            listing = gr.HTML(elem_id="timeline-entries")
            article = gr.HTML(elem_id="timeline-article")
        target = gr.Textbox(elem_id="tl-target", show_label=False, container=False)
        open_entry = gr.Button("tl", elem_id="tl-open")

    def run(q: str):
        return timeline_entries(ctx, q)

    def open_at(target: str, entries: list):
        """The linked item's article, the passage highlighted."""
        item = linked_item(target, entries)
        if item is None:
            return gr.update()
        start, end = item["start"], item["end"]
        return render_article(
            ctx.settings, item["file"], start, end, item["text"], labels, "timeline-article-view"
        )

    for trigger in (build.click, query.submit):
        trigger(run, query, [listing, entries_state], concurrency_limit=4)
    open_entry.click(open_at, [target, entries_state], article).then(None, None, None, js=SCROLL_JS)
