"""The UI's former single module; the interface now lives in ``rag.ui`` (one module per tab)."""

from .ui.app import CSS, build_app, main
from .ui.articles import articles_table, status_text
from .ui.labels import LABELS
from .ui.render import citation_choices, format_answer, render_article, render_passages
from .ui.store import add_articles, safe_upload_name

__all__ = [
    "CSS",
    "LABELS",
    "add_articles",
    "articles_table",
    "build_app",
    "citation_choices",
    "format_answer",
    "main",
    "render_article",
    "render_passages",
    "safe_upload_name",
    "status_text",
]
