"""The Articles tab: what is indexed, uploads, and rebuilding the index."""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from ..corpus import ARTICLE_SUFFIXES
from ..engine import Engine
from ..index import IndexError_
from .context import UIContext
from .labels import RU
from .store import add_articles

log = logging.getLogger(__name__)

# (label key, value of one manifest entry): add a column by adding a row here
COLUMNS = [
    ("col_title", lambda name, doc: doc["title"]),
    ("col_file", lambda name, doc: name),
    ("col_chunks", lambda name, doc: doc["chunks"]),
    ("col_indexed", lambda name, doc: doc["indexed_at"]),
]


def articles_table(engine: Engine) -> list[list]:
    try:
        docs = engine.index.manifest["documents"]
    except IndexError_:
        return []
    return [[value(name, doc) for _, value in COLUMNS] for name, doc in sorted(docs.items())]


def status_text(engine: Engine, labels: dict = RU) -> str:
    try:
        index = engine.index
    except IndexError_ as exc:
        return f"⚠️ {exc}"
    head = labels["index_head"].format(
        build=index.build_id, docs=len(index.manifest["documents"]), chunks=len(index)
    )
    problem = engine.retriever.problem()
    if problem:
        return labels["index_problem"].format(head=head, problem=problem)
    st = engine.corpus_status()  # hashes every article: only when the index itself is fine
    if st["up_to_date"]:
        return labels["index_fresh"].format(head=head)
    parts = "; ".join(
        f"{labels['st_' + kind]}: {', '.join(st[kind])}"
        for kind in ("added", "changed", "removed")
        if st[kind]
    )
    return labels["index_stale"].format(head=head, parts=parts)


def build_articles_tab(ctx: UIContext):
    """The tab; returns (refresh, its outputs) for the app to run when a page loads."""
    labels, engine = ctx.labels, ctx.engine
    with gr.Tab(labels["articles"], id="articles"):
        status = gr.Markdown(elem_id="index-status")
        table = gr.Dataframe(
            headers=[labels[key] for key, _ in COLUMNS],
            interactive=False,
            elem_id="articles-table",
        )
        with gr.Row():
            upload = gr.File(
                label=labels["upload"],
                file_count="multiple",
                file_types=list(ARTICLE_SUFFIXES),
                elem_id="upload",
            )
            with gr.Column():
                overwrite = gr.Checkbox(label=labels["overwrite"], value=False)
                rebuild = gr.Button(labels["rebuild"], variant="primary", elem_id="rebuild")
        upload_log = gr.Markdown(elem_id="upload-log")

    def refresh():
        return status_text(engine, labels), articles_table(engine)

    def on_upload(files, replace):
        uploads = []
        for f in files or []:
            path = Path(getattr(f, "name", f))
            original = getattr(f, "orig_name", None) or path.name
            uploads.append((original, path.read_bytes()))
        messages = add_articles(ctx.settings, uploads, replace, labels)
        return ("\n\n".join(messages), *refresh())

    def on_rebuild(progress=gr.Progress()):  # noqa: B008 - Gradio injects it
        def report(fraction: float, message: str) -> None:
            progress(fraction, desc=message)

        try:
            text = engine.build_index(on_progress=report).summary()
        except IndexError_ as exc:
            text = f"⚠️ {exc}"
        except OSError as exc:  # e.g. disk full: the build folder is discarded
            log.exception("index build failed")
            text = "⚠️ " + labels["build_failed"].format(exc=exc)
        return (text.replace("\n", "  \n"), *refresh())

    upload.upload(on_upload, [upload, overwrite], [upload_log, status, table])
    rebuild.click(
        on_rebuild,
        None,
        [upload_log, status, table],
        concurrency_limit=1,
        concurrency_id="rebuild",
        api_name="rebuild",
    )
    return refresh, [status, table]
