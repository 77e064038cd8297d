"""The Gradio app: one builder per tab over one shared ``Engine``; ``main`` runs the server."""

from __future__ import annotations

import argparse
import logging
import time

import gradio as gr
import uvicorn

from .. import api
from ..engine import Engine
from ..errors import SettingsError
from ..llm import LLMError
from ..memory import start_trimmer
from ..settings import Settings
from .articles import build_articles_tab
from .chat import CITE_LINKS_JS, build_chat_tab
from .context import UIContext
from .filters import outlet_choices
from .labels import labels_for
from .search import build_search_tab
from .settings_tab import build_settings_tab
from .state import Prefs
from .timeline_tab import build_timeline_tab

log = logging.getLogger(__name__)

CSS = """
.article-view { max-height: 520px; overflow-y: auto; white-space: pre-wrap; line-height: 1.5;
  border: 1px solid var(--border-color-primary); padding: 12px; border-radius: 8px; }
.article-view mark, #search-results mark { background: #ffe066; padding: 1px 0; }
.passage { border-left: 3px solid #4c6ef5; padding: 4px 10px; margin: 8px 0; }
.passage small { color: var(--body-text-color-subdued); }
.unsupported { background: #ffe3e3; }
#cite-target, #cite-open, #hit-target, #hit-open, #tl-target, #tl-open { display: none !important; }
#time-chip-row { align-items: center; gap: 8px; flex-wrap: nowrap; justify-content: flex-start; }
#time-chip-note { flex: 0 1 auto !important; width: auto; min-width: 0 !important; }
#time-chip-note p { margin: 0; color: var(--body-text-color-subdued); font-size: 0.9em; }
#time-chip { flex: 0 0 auto !important; min-width: max-content !important; width: auto;
  white-space: nowrap; border-radius: 999px; padding: 2px 12px; background: #e7f5ff;
  border: 1px solid #74c0fc; color: #1864ab; }
#time-chip:hover { background: #d0ebff; }
#chatbot .sources { display: block; margin-top: 6px; font-size: 0.9em;
  color: var(--body-text-color) !important; }
.tl-entry { display: flex; gap: 12px; padding: 6px 0;
  border-bottom: 1px solid var(--border-color-primary); }
.tl-date { flex: 0 0 8.5em; font-weight: 600; font-variant-numeric: tabular-nums; }
.tl-meta { font-size: 0.85em; color: var(--body-text-color-subdued); }
#timeline-entries a.tl { display: block; padding: 0 !important; color: inherit; text-align: left;
  text-decoration: none; }
#timeline-entries a.tl:hover, #timeline-entries a.tl:focus { text-decoration: underline;
  outline: 2px solid #4c6ef5; }
#timeline-article-view mark { background: #ffe066; padding: 1px 0; }
.bad-date { color: #c92a2a; }
#chatbot a.cite.near { font-weight: 400; text-decoration: underline; }
#chatbot a.cite { text-decoration: none; font-weight: 600; padding: 0 2px; border-radius: 4px; }
#chatbot a.cite:hover, #chatbot a.cite:focus { background: #ffe066; outline: 2px solid #4c6ef5; }
"""


def build_app(engine: Engine, lang: str = "ru") -> gr.Blocks:
    labels = labels_for(lang)
    with gr.Blocks(title=labels["title"]) as app:
        gr.Markdown(f"## {labels['title']}")
        prefs = gr.State(Prefs.from_settings(engine.settings).to_state())
        ctx = UIContext(engine, labels, prefs, lang if lang in ("ru", "en") else "ru")
        sources = [build_chat_tab(ctx), build_search_tab(ctx)]
        build_timeline_tab(ctx)
        refresh, refreshed = build_articles_tab(ctx)
        build_settings_tab(ctx)
        app.load(refresh, None, refreshed, api_name="status")

        def outlets():  # the outlets of the index as it is when the page opens
            choices = outlet_choices(ctx)
            return tuple(gr.update(choices=choices) for _ in sources)

        app.load(outlets, None, sources, api_visibility="private")
    return app


def web_app(engine: Engine):
    """The ASGI app ``main`` serves: the UI at ``/`` and the API at ``/v1`` over one engine
    (so one LLM limit), behind the configured log-in."""
    settings = engine.settings
    auth = None
    if settings.username and settings.password:
        auth = (settings.username, settings.password)
    app = build_app(engine, settings.language)
    app.queue(default_concurrency_limit=settings.concurrency, max_size=64)
    return api.server_app(
        engine,
        app,
        auth,
        css=CSS,
        js=CITE_LINKS_JS,
        show_error=False,
        max_file_size=settings.max_upload_bytes,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="newsrag web UI")
    parser.add_argument("--host", default=None, help="default 127.0.0.1 (RAG_HOST)")
    parser.add_argument("--port", type=int, default=None, help="default 7860 (RAG_PORT)")
    parser.add_argument("--lang", choices=["ru", "en"], default=None)
    parser.add_argument("--no-preload", action="store_true", help="load models on first use")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env(host=args.host, port=args.port, language=args.lang)
    except SettingsError as exc:
        raise SystemExit(f"error: {exc}") from None
    engine = Engine(settings)
    if not args.no_preload:
        started = time.time()
        try:  # the LLM first: a missing or damaged model file fails in seconds
            engine.llm  # noqa: B018
        except LLMError as exc:
            raise SystemExit(f"error: {exc}") from exc
        engine.embedder  # noqa: B018
        log.info("models loaded in %.1f s", time.time() - started)
    log.info("corpus %s, index %s", settings.corpus_dir, settings.index_dir)
    server = web_app(engine)
    start_trimmer(settings.memory_trim_s)
    log.info("UI at http://%s:%d/, API at /v1", settings.host, settings.port)
    uvicorn.run(server, host=settings.host, port=settings.port, log_level="warning")
