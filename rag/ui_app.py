"""Gradio interface over rag.engine (search for now; chat arrives with the answer stage)."""

from __future__ import annotations

import argparse
import html
import os

import gradio as gr

from .engine import Engine
from .settings import Settings


def _render(hits) -> str:
    if not hits:
        return "<p>Ничего не найдено.</p>"
    parts = []
    for h in hits:
        parts.append(
            f"<div class='hit'><b>{h.rank}. {html.escape(h.title)}</b> "
            f"<small>{html.escape(h.file)} [{h.start}:{h.end}] {h.score:.3f}</small>"
            f"<p>{html.escape(' '.join(h.text.split()))}</p></div>"
        )
    return "\n".join(parts)


def build_app(engine: Engine) -> gr.Blocks:
    with gr.Blocks(title="Новости: поиск") as app:
        gr.Markdown("## Поиск по статьям")
        query = gr.Textbox(label="Запрос")
        mode = gr.Radio(
            ["hybrid", "dense", "lexical"], value=engine.settings.search_mode, label="Режим"
        )
        out = gr.HTML()

        def run(q: str, m: str) -> str:
            q = q.strip()
            if not q:
                return "<p>Введите запрос.</p>"
            return _render(engine.search(q[: engine.settings.max_question_chars], mode=m))

        query.submit(run, [query, mode], out)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="newsrag web UI")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    settings = Settings.from_env(host=args.host, port=args.port)
    engine = Engine(settings)
    auth = None
    if os.environ.get("RAG_USERNAME") and os.environ.get("RAG_PASSWORD"):
        auth = (os.environ["RAG_USERNAME"], os.environ["RAG_PASSWORD"])
    build_app(engine).queue().launch(
        server_name=settings.host, server_port=settings.port, share=False, auth=auth
    )
