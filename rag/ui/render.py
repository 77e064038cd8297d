"""HTML and Markdown the UI shows: passages, an article with a highlighted span, answers."""

from __future__ import annotations

import html

from ..citations import MARKER, parse_markers
from ..corpus import CorpusError, load_document
from ..settings import Settings
from .labels import RU


def render_passages(passages: list[dict], empty: str) -> str:
    if not passages:
        return f"<p>{html.escape(empty)}</p>"
    out = []
    for p in passages:
        n = p.get("n", p.get("rank"))
        out.append(
            f"<div class='passage'><b>[{n}] <span class='doc'>{html.escape(p['title'])}</span>"
            f"</b><br><small><span class='doc'>{html.escape(p['file'])}</span> · "
            f"{p['start']}–{p['end']}</small>"
            f"<p class='doc'>{html.escape(' '.join(p['text'].split()))}</p></div>"
        )
    return "\n".join(out)


def render_article(
    settings: Settings,
    file: str,
    start: int,
    end: int,
    expected: str | None = None,
    labels: dict = RU,
) -> str:
    """The whole article with [start:end] highlighted; only files inside the corpus.

    ``expected`` is the cited text: if the file no longer has it at those offsets, the
    article was edited after indexing and the reader is told so instead of being shown
    a wrong highlight.
    """
    try:
        doc = load_document(settings.corpus_dir, file)
    except (CorpusError, OSError) as exc:
        return f"<div id='article-view'><p>⚠️ {html.escape(str(exc))}</p></div>"
    text = doc.original
    in_bounds = 0 <= start <= end <= len(text)
    if not in_bounds or (expected is not None and text[start:end] != expected):
        note = "⚠️ " + labels["article_changed"].format(file=file)
        return f"<div id='article-view'><p>{html.escape(note)}</p></div>"
    body = (
        html.escape(text[:start])
        + "<mark>"
        + html.escape(text[start:end])
        + "</mark>"
        + html.escape(text[end:])
    )
    head = (
        f"<b class='doc'>{html.escape(doc.title)}</b><br><small><span class='doc'>"
        f"{html.escape(file)}</span> · {start}–{end}</small>"
    )
    return f"<div>{head}</div><div id='article-view' class='doc' tabindex='0'>{body}</div>"


def format_answer(result: dict, labels: dict) -> str:
    text = result["answer"]
    for sentence in result.get("unsupported", []):
        text = text.replace(sentence, f"⚠️ {sentence} _({labels['unsupported']})_")
    if result.get("fallback"):
        text = f"_ℹ️ {labels['fallback_' + result['fallback']]}_\n\n{text}"
    return text


def citation_choices(citations: list[dict]) -> list[tuple[str, int]]:
    return [(f"[{c['n']}] {c['title']} — {c['file']}", i) for i, c in enumerate(citations)]


def link_citations(text: str, citations: list[dict], turn: int) -> str:
    """Each ``[n]`` of an answer as a link to its cited span; its title is the sentence.

    ``turn`` numbers the answer in the conversation, so the links of earlier answers keep
    opening their own citations. A plain anchor: Tab reaches it, Enter opens it.
    """
    by_n = {c["n"]: c for c in citations}

    def link(n: int) -> str:
        c = by_n.get(n)
        if c is None:
            return f"[{n}]"
        tip = html.escape(f"{c['title']}: {' '.join(c['text'].split())}", quote=True)
        return f'<a class="cite" href="#cite-{turn}-{n}" title="{tip}">[{n}]</a>'

    return MARKER.sub(lambda m: "".join(link(n) for n in parse_markers(m.group(0))), text)
