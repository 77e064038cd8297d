"""The Articles tab: every article with its status, open / download / delete / replace one,
uploads with progress per file, and rebuilding the index."""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from pathlib import Path

import gradio as gr

from ..corpus import ARTICLE_SUFFIXES, CorpusError
from ..engine import Engine
from ..index import IndexError_
from ..remote_embeddings import EmbeddingServerError
from .context import UIContext
from .labels import RU
from .render import reader_error, render_article, without_paths
from .store import (
    ArticleRow,
    add_articles,
    article_rows,
    corpus_file,
    delete_article,
    replace_article,
)

log = logging.getLogger(__name__)


def _status(row: ArticleRow, labels: dict) -> str:
    if row.status == "skipped":
        return labels["stat_skipped"].format(reason=row.reason)
    return labels["stat_" + row.status]


# (label key, value of one row): add a column by adding a row here
COLUMNS = [
    ("col_status", _status),
    ("col_title", lambda row, labels: row.title),
    ("col_date", lambda row, labels: row.date),
    ("col_source", lambda row, labels: row.source),
    ("col_file", lambda row, labels: row.file),
    ("col_chunks", lambda row, labels: row.chunks),
]
FILE_COLUMN = [key for key, _ in COLUMNS].index("col_file")


def _manifest(engine: Engine) -> dict | None:
    try:
        return engine.index.manifest
    except IndexError_:
        return None


def article_list(engine: Engine, text: str = "") -> list[ArticleRow]:
    """The articles whose title, file, date or source contain ``text``."""
    try:
        rows = article_rows(engine.settings, _manifest(engine))
    except CorpusError as exc:  # the corpus folder is missing
        log.warning("cannot list the corpus: %s", exc)
        return []
    return [row for row in rows if row.matches(text or "")]


def articles_table(engine: Engine, text: str = "", labels: dict = RU) -> list[list]:
    return [[value(row, labels) for _, value in COLUMNS] for row in article_list(engine, text)]


def status_text(engine: Engine, labels: dict = RU) -> str:
    try:
        index = engine.index
    except IndexError_ as exc:
        return f"⚠️ {reader_error(exc, labels)}"
    head = labels["index_head"].format(
        build=index.build_id, docs=len(index.manifest["documents"]), chunks=len(index)
    )
    problem = engine.retriever.problem()
    if problem:
        log.warning("index problem: %s", problem)
        return labels["index_problem"].format(head=head, problem=without_paths(problem))
    try:
        st = engine.corpus_status()  # hashes every article: only when the index itself is fine
    except (CorpusError, IndexError_) as exc:
        return f"{head} ⚠️ {reader_error(exc, labels)}"
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
    labels, engine, settings = ctx.labels, ctx.engine, ctx.settings
    downloads = tempfile.TemporaryDirectory(prefix="newsrag-downloads-")
    with gr.Tab(labels["articles"], id="articles"):
        status = gr.Markdown(elem_id="index-status")
        search = gr.Textbox(
            label=labels["filter"],
            placeholder=labels["filter_placeholder"],
            elem_id="articles-filter",
        )
        table = gr.Dataframe(
            headers=[labels[key] for key, _ in COLUMNS],
            interactive=False,
            wrap=True,
            column_widths=["16%", "38%", "9%", "11%", "18%", "8%"],
            elem_id="articles-table",
        )
        with gr.Row():
            pick = gr.Dropdown([], label=labels["pick_article"], elem_id="article-pick", scale=3)
            open_button = gr.Button(labels["open"], elem_id="article-open", scale=1)
            download = gr.DownloadButton(
                labels["download"], elem_id="article-download", interactive=False, scale=1
            )
            replace = gr.UploadButton(
                labels["replace"],
                file_types=list(ARTICLE_SUFFIXES),
                file_count="single",
                elem_id="article-replace",
                scale=1,
            )
            delete = gr.Button(labels["delete"], variant="stop", elem_id="article-delete", scale=1)
        with gr.Row(visible=False, elem_id="delete-confirm") as confirm:
            confirm_text = gr.Markdown(elem_id="delete-question")
            yes = gr.Button(labels["yes_delete"], variant="stop", elem_id="delete-yes")
            no = gr.Button(labels["cancel"], elem_id="delete-no")
        upload_log = gr.Markdown(elem_id="upload-log")
        viewer = gr.HTML(elem_id="articles-viewer")
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

    def refresh(text: str = ""):
        rows = article_list(engine, text)
        choices = [
            (f"{row.title or row.file} — {row.file}", row.file)
            for row in rows
            if row.status != "removed"
        ]
        table_rows = [[value(row, labels) for _, value in COLUMNS] for row in rows]
        return status_text(engine, labels), table_rows, gr.update(choices=choices)

    def on_load():
        return refresh("")

    def on_filter(text: str):
        return refresh(text)

    def on_select(evt: gr.SelectData):
        row = getattr(evt, "row_value", None) or []
        name = row[FILE_COLUMN] if len(row) > FILE_COLUMN else None
        return gr.update(value=name) if name else gr.update()

    def on_pick(name: str | None):
        """Ready the download of the picked file: a copy, so no corpus path is served."""
        if not name:
            return gr.update(value=None, interactive=False), gr.update(visible=False)
        try:
            path = corpus_file(settings, name, labels)
            folder = Path(downloads.name) / uuid.uuid4().hex
            folder.mkdir()
            copy = folder / path.name
            shutil.copyfile(path, copy)
        except (ValueError, OSError) as exc:
            log.warning("no download for %s: %s", name, exc)
            return gr.update(value=None, interactive=False), gr.update(visible=False)
        return gr.update(value=str(copy), interactive=True), gr.update(visible=False)

    def on_open(name: str | None):
        if not name:
            return f"<p>{labels['no_article']}</p>"
        try:
            corpus_file(settings, name, labels)
        except ValueError as exc:
            return f"<p>❌ {exc}</p>"
        return render_article(settings, name, labels=labels, view_id="articles-view")

    def on_delete(name: str | None, text: str):
        rows = {row.file: row for row in article_list(engine, "")}
        if not name or name not in rows:
            return gr.update(visible=False), "", labels["no_article"]
        row = rows[name]
        question = labels["confirm_delete"].format(title=row.title or name, file=name)
        return gr.update(visible=True), question, ""

    def on_confirm(name: str | None, text: str):
        message = delete_article(settings, name or "", labels)
        log.info("delete %s: %s", name, message)
        status_md, rows, choices = refresh(text)
        return (
            gr.update(visible=False),
            message,
            status_md,
            rows,
            {**choices, "value": None},
            "",
        )

    def on_replace(file, name: str | None, text: str):
        if not name:
            return labels["no_article"], *refresh(text)
        path = Path(getattr(file, "name", file))
        original = getattr(file, "orig_name", None) or path.name
        message = replace_article(settings, name, original, path.read_bytes(), labels)
        return message, *refresh(text)

    def on_upload(files, overwrite_existing, text, progress=gr.Progress()):  # noqa: B008
        files = list(files or [])
        messages: list[str] = []
        keep = (gr.update(), gr.update(), gr.update())
        for i, f in enumerate(files, 1):
            path = Path(getattr(f, "name", f))
            original = getattr(f, "orig_name", None) or path.name
            step = labels["upload_progress"].format(i=i, n=len(files), name=original)
            progress((i - 1, len(files)), desc=step)
            yield "\n\n".join([*messages, f"⏳ {step}"]), *keep
            messages += add_articles(
                settings, [(original, path.read_bytes())], overwrite_existing, labels
            )
        yield "\n\n".join(messages), *refresh(text)

    def on_rebuild(text: str, progress=gr.Progress()):  # noqa: B008 - Gradio injects it
        def report(fraction: float, message: str) -> None:
            progress(fraction, desc=message)

        try:
            summary = engine.build_index(on_progress=report).summary()
        # the old index stays in use
        except (IndexError_, CorpusError, OSError, EmbeddingServerError) as exc:
            log.exception("index build failed")
            summary = "⚠️ " + labels["build_failed"].format(exc=reader_error(exc, labels))
        return (summary.replace("\n", "  \n"), *refresh(text))

    listing = [status, table, pick]
    search.change(on_filter, search, listing)
    table.select(on_select, None, pick)
    pick.change(on_pick, pick, [download, confirm]).then(
        lambda name: on_open(name) if name else "", pick, viewer
    )
    open_button.click(on_open, pick, viewer)
    delete.click(on_delete, [pick, search], [confirm, confirm_text, upload_log])
    no.click(lambda: gr.update(visible=False), None, confirm)
    yes.click(on_confirm, [pick, search], [confirm, upload_log, *listing, viewer])
    replace.upload(on_replace, [replace, pick, search], [upload_log, *listing]).then(
        on_open, pick, viewer
    )
    upload.upload(on_upload, [upload, overwrite, search], [upload_log, *listing])
    rebuild.click(
        on_rebuild,
        search,
        [upload_log, *listing],
        concurrency_limit=1,
        concurrency_id="rebuild",
        api_name="rebuild",
    )
    return on_load, listing
