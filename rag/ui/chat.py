"""The Chat tab: streamed answers, the passages found, the cited article."""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import gradio as gr

from ..answer import QuestionError
from ..export import Turn, to_json, to_markdown
from ..index import IndexError_
from ..llm import LLMError
from ..timefilter import Filters
from .context import UIContext
from .filters import CHIP_HIDDEN, BadDate, filter_row, parse_filters, question_chip
from .render import (
    answer_view,
    citation_choices,
    reader_error,
    render_article,
    render_passages,
)
from .state import ChatView

log = logging.getLogger(__name__)

# A click (or Enter) on a [n] link in the chat (or on a search hit's title) names its
# target in a hidden box, whose hidden button opens the article; a counter makes the same
# link work twice in a row.
CITE_LINKS_JS = """() => {
  if (window.newsragCiteLinks) return;
  window.newsragCiteLinks = true;
  let count = 0;
  document.addEventListener('click', (event) => {
    const link = event.target.closest('a.cite, a.hit, a.tl');
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    const kind = ['hit', 'tl'].find((k) => link.classList.contains(k)) || 'cite';
    const box = document.querySelector(`#${kind}-target textarea`);
    if (!box) return;
    box.value = link.getAttribute('href').replace(`#${kind}-`, '') + '|' + (++count);
    box.dispatchEvent(new Event('input', {bubbles: true}));
    setTimeout(() => document.querySelector(`#${kind}-open`).click(), 50);
  }, true);
}"""

SCROLL_JS = """() => { setTimeout(() => {
  const m = document.querySelector('#article-view mark');
  if (m) m.scrollIntoView({block: 'center'}); }, 150); }"""


def answer_steps(
    ctx: UIContext,
    message: str,
    history: list,
    chat: list,
    prefs: dict,
    cited: list,
    turns: list | None = None,
    filters: Filters | None = None,
    question_filters: bool = True,
) -> Iterator[ChatView]:
    """The chat column after each event of ``Engine.ask``: status, passages, tokens, answer.

    ``filters`` are the filter row's; ``question_filters=False`` answers without the time
    filter the question's words would add (the reader removed its chip)."""
    labels, settings = ctx.labels, ctx.settings
    chat = [*(chat or []), {"role": "user", "content": message}]
    chat.append({"role": "assistant", "content": labels["searching"]})
    yield ChatView(chat, history, choices=[], chip=CHIP_HIDDEN)
    text = " ".join((message or "").split())
    if not text:
        chat[-1]["content"] = f"⚠️ {labels['empty_question']}"
        yield ChatView(chat, history)
        return
    if len(text) > settings.max_question_chars:
        why = labels["long_question"].format(n=len(text), max=settings.max_question_chars)
        chat[-1]["content"] = f"⚠️ {why}"
        yield ChatView(chat, history)
        return
    try:
        streamed = drafted = ""
        events = ctx.engine.ask(
            message,
            history,
            use_llm=prefs["use_llm"],
            answer_mode=prefs.get("answer_mode"),
            k=prefs["k"],
            mode=prefs["mode"],
            temperature=prefs["temperature"],
            filters=filters,
            question_filters=question_filters,
        )
        for event in events:
            if event["type"] == "evidence":
                chat[-1]["content"] = labels[
                    "rewriting" if event.get("provisional") else "thinking"
                ]
                passages = render_passages(event["passages"], labels["none"])
                yield ChatView(chat, history, evidence=passages)
            elif event["type"] == "queued":
                status = labels["queued"].format(n=event["position"])
                chat[-1]["content"] = f"{drafted}\n\n_{status}_" if drafted else status
                yield ChatView(chat, history)
            elif event["type"] == "token":
                streamed += event["text"]
                chat[-1]["content"] = streamed
                yield ChatView(chat, history)
            elif event["type"] == "draft":  # verified sentences while the LLM checks them
                drafted, targets = answer_view(event["result"], labels, len(cited or []))
                chat[-1]["content"] = f"{drafted}\n\n_{labels['checking']}_"
                # its links work at once; the citation list waits for the final answer
                yield ChatView(chat, history, cited=[*(cited or []), targets])
            elif event["type"] == "done":
                result = event["result"]
                cites = result["citations"]
                text, targets = answer_view(result, labels, len(cited or []))
                cited = [*(cited or []), targets]  # what the answer's links open
                chat[-1]["content"] = text
                history = [*history, (message, result["answer"])]
                choices = citation_choices(cites)
                turns = [*(turns or []), Turn.from_result(result)]
                yield ChatView(
                    chat,
                    history,
                    citations=cites,
                    choices=choices,
                    cited=cited,
                    turns=turns,
                    chip=question_chip(result.get("filters"), labels),
                    asked=message,
                )
    except GeneratorExit:  # Stop or a closed tab: free the LLM now, not at GC
        events.close()
        raise
    except QuestionError as exc:
        text = labels[exc.code].format(**exc.params) if exc.code in labels else str(exc)
        chat[-1]["content"] = f"⚠️ {text}"
        yield ChatView(chat, history)
    except (LLMError, IndexError_, OSError, RuntimeError) as exc:
        log.exception("answer failed")
        chat[-1]["content"] = "⚠️ " + labels["error"].format(exc=reader_error(exc, labels))
        yield ChatView(chat, history)


def build_chat_tab(ctx: UIContext) -> gr.Dropdown:
    """The tab; returns its source dropdown, for the app to refresh with the index."""
    labels = ctx.labels
    history_state = gr.State([])  # [(question, answer)] of this browser session
    citations_state = gr.State([])  # citations of the last answer
    cited_state = gr.State([])  # citations of every answer, by its number in the chat
    turns_state = gr.State([])  # every answer as exported (rag.export.Turn)
    asked_state = gr.State("")  # the question whose time filter the chip names
    exports = tempfile.TemporaryDirectory(prefix="newsrag-exports-")
    with gr.Tab(labels["chat"], id="chat"), gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label=labels["chat"], height=460, elem_id="chatbot")
            with gr.Row(visible=False, elem_id="time-chip-row") as chip_row:
                chip_note = gr.Markdown(elem_id="time-chip-note")
                chip = gr.Button("", size="sm", elem_id="time-chip")
            question = gr.Textbox(
                label=labels["question"],
                placeholder=labels["placeholder"],
                elem_id="question",
                lines=1,
                max_lines=4,
            )
            filters = filter_row(ctx, "chat")
            with gr.Row():
                send = gr.Button(labels["send"], variant="primary", elem_id="send")
                stop = gr.Button(labels["stop"], elem_id="stop")
                clear = gr.Button(labels["clear"], elem_id="clear")
            citation_pick = gr.Radio(
                [], label=labels["citations"], elem_id="citations", type="value"
            )
            with gr.Row():
                export_md = gr.DownloadButton(
                    labels["export_md"], elem_id="export-md", interactive=False, size="sm"
                )
                export_json = gr.DownloadButton(
                    labels["export_json"], elem_id="export-json", interactive=False, size="sm"
                )
            cite_target = gr.Textbox(elem_id="cite-target", show_label=False, container=False)
            cite_open = gr.Button("[n]", elem_id="cite-open")
        with gr.Column(scale=2):
            evidence = gr.HTML(f"<p>{labels['evidence']}</p>", elem_id="evidence")
            article = gr.HTML(f"<p>{labels['pick']}</p>", elem_id="article")

    def steps(message, history, chat, prefs, cited, turns, row: tuple, question_filters: bool):
        try:
            chosen = parse_filters(*row, labels)
        except BadDate as exc:  # said in the chat; the question stays in its box
            chat = [*(chat or []), {"role": "user", "content": message}]
            chat.append({"role": "assistant", "content": f"⚠️ {exc}"})
            yield ChatView(chat, history, question=message).values()
            return
        for view in answer_steps(
            ctx, message, history, chat, prefs, cited, turns, chosen, question_filters
        ):
            yield view.values()

    def respond(message, history, chat, prefs, cited, turns, since=None, until=None, source=None):
        """One answer; the filters default to none, so ``/ask`` API callers may leave them."""
        yield from steps(message, history, chat, prefs, cited, turns, (since, until, source), True)

    def without_chip(asked, history, chat, prefs, cited, turns, since, until, source):
        """The chip's ✕: the same question again, its time expression not applied."""
        row = (since, until, source)
        yield from steps(asked, history, chat, prefs, cited, turns, row, False)

    def export_files(turns: list):
        """The conversation so far as a Markdown and a JSON file to download."""
        if not turns:
            off = gr.update(value=None, interactive=False)
            return off, off
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        folder = Path(exports.name) / uuid.uuid4().hex
        folder.mkdir()
        name = "conversation-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        md, js = folder / f"{name}.md", folder / f"{name}.json"
        md.write_text(to_markdown(turns, ctx.lang, stamp), encoding="utf-8")
        js.write_text(to_json(turns, stamp), encoding="utf-8")
        return (
            gr.update(value=str(md), interactive=True),
            gr.update(value=str(js), interactive=True),
        )

    def open_cited(target: str, cited: list):
        """``turn-n|count`` from a link in the chat: that answer's citation n."""
        try:
            turn, n = (int(x) for x in (target or "").split("|")[0].split("-"))
        except ValueError:
            return gr.update()
        if not 0 <= turn < len(cited or []):
            return gr.update()
        c = next((c for c in cited[turn] if c["n"] == n), None)
        if c is None:
            return gr.update()
        return render_article(ctx.settings, c["file"], c["start"], c["end"], c.get("text"), labels)

    def show_citation(index, cites):
        if index is None or not cites or index >= len(cites):
            return gr.update()
        c = cites[index]
        return render_article(ctx.settings, c["file"], c["start"], c["end"], c.get("text"), labels)

    def clear_all():
        empty = ChatView(
            [],
            [],
            evidence=f"<p>{labels['evidence']}</p>",
            choices=[],
            cited=[],
            turns=[],
            chip=CHIP_HIDDEN,
            asked="",
        )
        off = gr.update(value=None, interactive=False)
        return (*empty.values(), f"<p>{labels['pick']}</p>", off, off)

    outputs = [
        *(chatbot, history_state, evidence, citations_state, citation_pick, question),
        cited_state,
        turns_state,
        *(chip_row, chip_note, chip),
        asked_state,
    ]
    session = [history_state, chatbot, ctx.prefs, cited_state, turns_state, *filters.inputs]
    inputs = [question, *session]
    run = {"concurrency_limit": ctx.engine.llm_slots(), "concurrency_id": "llm"}
    submit = question.submit(respond, inputs, outputs, api_visibility="private", **run)
    click = send.click(respond, inputs, outputs, api_name="ask", **run)
    unchip = chip.click(
        without_chip, [asked_state, *session], outputs, api_visibility="private", **run
    )
    for answered in (submit, click, unchip):
        answered.then(export_files, turns_state, [export_md, export_json])
    stop.click(None, None, None, cancels=[submit, click, unchip])
    clear.click(clear_all, None, [*outputs, article, export_md, export_json])
    citation_pick.change(show_citation, [citation_pick, citations_state], article).then(
        None, None, None, js=SCROLL_JS
    )
    cite_open.click(open_cited, [cite_target, cited_state], article).then(
        None, None, None, js=SCROLL_JS
    )
    return filters.source
