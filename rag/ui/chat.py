"""The Chat tab: streamed answers, the passages found, the cited article."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import gradio as gr

from ..answer import QuestionError
from ..index import IndexError_
from ..llm import LLMError
from .context import UIContext
from .render import (
    citation_choices,
    format_answer,
    link_citations,
    render_article,
    render_passages,
)
from .state import ChatView

log = logging.getLogger(__name__)

# A click (or Enter) on a [n] link in the chat names its citation in a hidden box, whose
# hidden button opens the article; a counter makes the same link work twice in a row.
CITE_LINKS_JS = """() => {
  if (window.newsragCiteLinks) return;
  window.newsragCiteLinks = true;
  let count = 0;
  document.addEventListener('click', (event) => {
    const link = event.target.closest('a.cite');
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    const box = document.querySelector('#cite-target textarea');
    if (!box) return;
    box.value = link.getAttribute('href').replace('#cite-', '') + '|' + (++count);
    box.dispatchEvent(new Event('input', {bubbles: true}));
    setTimeout(() => document.querySelector('#cite-open').click(), 50);
  }, true);
}"""

SCROLL_JS = """() => { setTimeout(() => {
  const m = document.querySelector('#article-view mark');
  if (m) m.scrollIntoView({block: 'center'}); }, 150); }"""


def answer_steps(
    ctx: UIContext, message: str, history: list, chat: list, prefs: dict, cited: list
) -> Iterator[ChatView]:
    """The chat column after each event of ``Engine.ask``: status, passages, tokens, answer."""
    labels, settings = ctx.labels, ctx.settings
    chat = [*(chat or []), {"role": "user", "content": message}]
    chat.append({"role": "assistant", "content": labels["searching"]})
    yield ChatView(chat, history, choices=[])
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
        streamed = ""
        events = ctx.engine.ask(
            message,
            history,
            use_llm=prefs["use_llm"],
            k=prefs["k"],
            mode=prefs["mode"],
            temperature=prefs["temperature"],
        )
        for event in events:
            if event["type"] == "evidence":
                chat[-1]["content"] = labels[
                    "rewriting" if event.get("provisional") else "thinking"
                ]
                passages = render_passages(event["passages"], labels["none"])
                yield ChatView(chat, history, evidence=passages)
            elif event["type"] == "token":
                streamed += event["text"]
                chat[-1]["content"] = streamed
                yield ChatView(chat, history)
            elif event["type"] == "done":
                result = event["result"]
                cites = result["citations"]
                cited = [*(cited or []), cites]
                text = format_answer(result, labels)
                chat[-1]["content"] = link_citations(text, cites, len(cited) - 1)
                history = [*history, (message, result["answer"])]
                choices = citation_choices(cites)
                yield ChatView(chat, history, citations=cites, choices=choices, cited=cited)
    except GeneratorExit:  # Stop or a closed tab: free the LLM now, not at GC
        events.close()
        raise
    except QuestionError as exc:
        text = labels[exc.code].format(**exc.params) if exc.code in labels else str(exc)
        chat[-1]["content"] = f"⚠️ {text}"
        yield ChatView(chat, history)
    except (LLMError, IndexError_, OSError, RuntimeError) as exc:
        log.exception("answer failed")
        chat[-1]["content"] = "⚠️ " + labels["error"].format(exc=exc)
        yield ChatView(chat, history)


def build_chat_tab(ctx: UIContext) -> None:
    labels = ctx.labels
    history_state = gr.State([])  # [(question, answer)] of this browser session
    citations_state = gr.State([])  # citations of the last answer
    cited_state = gr.State([])  # citations of every answer, by its number in the chat
    with gr.Tab(labels["chat"], id="chat"), gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label=labels["chat"], height=460, elem_id="chatbot")
            question = gr.Textbox(
                label=labels["question"],
                placeholder=labels["placeholder"],
                elem_id="question",
                lines=1,
                max_lines=4,
            )
            with gr.Row():
                send = gr.Button(labels["send"], variant="primary", elem_id="send")
                stop = gr.Button(labels["stop"], elem_id="stop")
                clear = gr.Button(labels["clear"], elem_id="clear")
            citation_pick = gr.Radio(
                [], label=labels["citations"], elem_id="citations", type="value"
            )
            cite_target = gr.Textbox(elem_id="cite-target", show_label=False, container=False)
            cite_open = gr.Button("[n]", elem_id="cite-open")
        with gr.Column(scale=2):
            evidence = gr.HTML(f"<p>{labels['evidence']}</p>", elem_id="evidence")
            article = gr.HTML(f"<p>{labels['pick']}</p>", elem_id="article")

    def respond(message: str, history: list, chat: list, prefs: dict, cited: list):
        for view in answer_steps(ctx, message, history, chat, prefs, cited):
            yield view.values()

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
        empty = ChatView([], [], evidence=f"<p>{labels['evidence']}</p>", choices=[], cited=[])
        return (*empty.values(), f"<p>{labels['pick']}</p>")

    outputs = [
        *(chatbot, history_state, evidence, citations_state, citation_pick, question),
        cited_state,
    ]
    inputs = [question, history_state, chatbot, ctx.prefs, cited_state]
    run = {"concurrency_limit": ctx.engine.llm_slots(), "concurrency_id": "llm"}
    submit = question.submit(respond, inputs, outputs, api_visibility="private", **run)
    click = send.click(respond, inputs, outputs, api_name="ask", **run)
    stop.click(None, None, None, cancels=[submit, click])
    clear.click(clear_all, None, [*outputs, article])
    citation_pick.change(show_citation, [citation_pick, citations_state], article).then(
        None, None, None, js=SCROLL_JS
    )
    cite_open.click(open_cited, [cite_target, cited_state], article).then(
        None, None, None, js=SCROLL_JS
    )
