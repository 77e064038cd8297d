"""HTML and Markdown the UI shows: passages, an article with a highlighted span, answers,
and messages for the reader in place of the server's own (which keep paths and internals
for the console log)."""

from __future__ import annotations

import html
import logging
import re

from ..citations import MARKER, parse_markers
from ..corpus import CorpusError, load_document
from ..embeddings import EmbeddingMismatchError
from ..export import made_of_sentences
from ..index import IndexBusyError, IndexError_, IndexMissingError
from ..lexical import tokenize
from ..llm import LLMError
from ..remote_embeddings import EmbeddingServerError
from ..settings import Settings
from .labels import EN, RU

log = logging.getLogger(__name__)

# An absolute POSIX path (or a home-relative one): never shown in the page
_PATH = re.compile(r"(?<![\w/.:~])~?/[^\s/'\"«»();,`]+(?:/[^\s/'\"«»();,`]*)*")


def without_paths(text: str) -> str:
    """``text`` with every absolute folder or file path replaced by "…"."""
    return _PATH.sub("…", text)


def reader_error(exc: BaseException, labels: dict = RU) -> str:
    """What the reader is told about an error from outside the UI: what happened and what
    to do, without the server's folders or model files (the log has the full message)."""
    log.warning("shown to the reader as an error: %s: %s", type(exc).__name__, exc)
    if isinstance(exc, IndexMissingError):
        return labels["err_no_index"]
    if isinstance(exc, IndexBusyError):
        return labels["err_index_busy"]
    if isinstance(exc, IndexError_):
        return labels["err_index"]
    if isinstance(exc, EmbeddingMismatchError | EmbeddingServerError):
        return labels["err_embedding"].format(detail=without_paths(str(exc)))
    if isinstance(exc, LLMError):
        return labels["err_llm"].format(detail=without_paths(str(exc)))
    if isinstance(exc, OSError):
        return labels["err_os"].format(detail=exc.strerror or type(exc).__name__)
    if isinstance(exc, CorpusError):
        return labels["err_corpus"].format(detail=without_paths(str(exc)))
    return labels["err_internal"]


def _meta(p: dict) -> str:
    parts = [f"<span class='doc'>{html.escape(p['file'])}</span>"]
    if p.get("date"):
        parts.append(html.escape(str(p["date"])))
    if p.get("source"):
        parts.append(f"<span class='doc'>{html.escape(p['source'])}</span>")
    parts.append(f"{p['start']}–{p['end']}")
    return " · ".join(parts)


def _copies(p: dict, labels: dict) -> str:
    """A line naming the story's other copies (outlet or file, date), or ""."""
    duplicates = p.get("duplicates") or []
    if not duplicates:
        return ""
    # "also_copies" may join the label tables; until then the two languages are here
    word = labels.get("also_copies") or ("also" if labels.get("none") == EN["none"] else "также")
    names = [
        html.escape(d.get("source") or d["file"])
        + (f", {html.escape(d['date'])}" if d.get("date") else "")
        for d in duplicates
    ]
    return f"<br><small class='copies'>{word}: {'; '.join(names)}</small>"


def render_passages(passages: list[dict], empty: str, labels: dict | None = None) -> str:
    if not passages:
        return f"<p>{html.escape(empty)}</p>"
    # callers that pass only the "none" label: its language is the page's
    labels = labels or (EN if empty == EN["none"] else RU)
    out = []
    for p in passages:
        n = p.get("n", p.get("rank"))
        out.append(
            f"<div class='passage'><b>[{n}] <span class='doc'>{html.escape(p['title'])}</span>"
            f"</b><br><small>{_meta(p)}</small>{_copies(p, labels)}"
            f"<p class='doc'>{html.escape(' '.join(p['text'].split()))}</p></div>"
        )
    return "\n".join(out)


def mark_words(text: str, query: str) -> str:
    """``text`` HTML-escaped, each word whose stem is one of the query's (stop words
    aside) in ``<mark>``: "терактов" marks "теракт", "теракты", "терактах"."""
    stems = set(tokenize(query))
    out, pos = [], 0
    for match in re.finditer(r"\w+", text):
        word = match.group()
        if stems.intersection(tokenize(word)):
            out.append(html.escape(text[pos : match.start()]))
            out.append(f"<mark>{html.escape(word)}</mark>")
            pos = match.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def render_hits(hits: list[dict], query: str, labels: dict = RU) -> str:
    """Search hits with the query's words marked; each title is a link (``#hit-i``) that
    opens the article at the passage."""
    if not hits:
        return f"<p>{html.escape(labels['none'])}</p>"
    out = []
    for i, h in enumerate(hits):
        tip = html.escape(labels["open_hit"], quote=True)
        body = mark_words(" ".join(h["text"].split()), query)
        out.append(
            f"<div class='passage'><b>[{h.get('rank', i + 1)}] <a class='hit doc' "
            f"href='#hit-{i}' title='{tip}'>{html.escape(h['title'])}</a></b><br>"
            f"<small>{_meta(h)}</small>{_copies(h, labels)}<p class='doc'>{body}</p></div>"
        )
    return "\n".join(out)


def render_article(
    settings: Settings,
    file: str,
    start: int | None = None,
    end: int | None = None,
    expected: str | None = None,
    labels: dict = RU,
    view_id: str = "article-view",
) -> str:
    """The whole article with [start:end] highlighted (none without a span); only files
    inside the corpus.

    ``expected`` is the cited text: if the file no longer has it at those offsets, the
    article was edited after indexing and the reader is told so instead of being shown
    a wrong highlight. ``view_id`` names the viewer, one per tab.
    """
    try:
        doc = load_document(settings.corpus_dir, file)
    except (CorpusError, OSError) as exc:
        log.warning("cannot show %s: %s", file, exc)
        gone = (settings.corpus_dir / file).resolve().is_file() is False
        note = labels["article_gone" if gone else "article_unreadable"].format(file=file)
        return f"<div id='{view_id}' class='article-view'><p>⚠️ {html.escape(note)}</p></div>"
    text = doc.original
    if start is None or end is None:
        body = html.escape(text)
        span = ""
    else:
        in_bounds = 0 <= start <= end <= len(text)
        if not in_bounds or (expected is not None and text[start:end] != expected):
            note = "⚠️ " + labels["article_changed"].format(file=file)
            return f"<div id='{view_id}' class='article-view'><p>{html.escape(note)}</p></div>"
        body = (
            html.escape(text[:start])
            + "<mark>"
            + html.escape(text[start:end])
            + "</mark>"
            + html.escape(text[end:])
        )
        span = f" · {start}–{end}"
    date = f" · {html.escape(doc.date)}" if doc.date else ""
    source = f" · <span class='doc'>{html.escape(doc.source)}</span>" if doc.source else ""
    head = (
        f"<b class='doc'>{html.escape(doc.title)}</b><br><small><span class='doc'>"
        f"{html.escape(file)}</span>{date}{source}{span}</small>"
    )
    return (
        f"<div>{head}</div><div id='{view_id}' class='article-view doc' tabindex='0'>{body}</div>"
    )


def linked_item(target: str, items: list) -> dict | None:
    """The item an ``i|count`` link target names (a search hit, a timeline entry), or None
    for a stale or malformed target."""
    try:
        i = int((target or "").split("|")[0])
    except ValueError:
        return None
    return items[i] if 0 <= i < len(items or []) else None


def format_answer(result: dict, labels: dict) -> str:
    """The answer as the reader sees it: unsupported sentences marked, and a plain note
    when it is made of article sentences (the internal reason only goes to the log)."""
    text = result["answer"]
    for sentence in result.get("unsupported", []):
        text = text.replace(sentence, f"⚠️ {sentence} _({labels['unsupported']})_")
    if result.get("fallback"):
        log.info("the model's answer gave way to article sentences: %s", result["fallback"])
    if made_of_sentences(result):
        text = f"_ℹ️ {labels['made_of_sentences']}_\n\n{text}"
    return text


def closest_passages(result: dict, most: int = 3) -> list[dict]:
    """For a refusal: the best passage of each of the (at most ``most``) articles that
    came closest to the question, renumbered from 1 for the links."""
    seen: dict[str, dict] = {}
    for p in result.get("passages", []):
        if p["file"] not in seen and len(seen) < most:
            seen[p["file"]] = {**p, "n": len(seen) + 1}
    return list(seen.values())


def refusal_hint(closest: list[dict], turn: int, labels: dict) -> str:
    """What to try after a refusal: rephrase, the Search tab, the closest articles."""
    text = f"_→ {labels['refusal_next']}_"
    if closest:
        links = ", ".join(
            f'<a class="cite near" href="#cite-{turn}-{p["n"]}" '
            f'title="{html.escape(" ".join(p["text"].split()), quote=True)}">'
            f"{html.escape(p['title'])}</a>"
            for p in closest
        )
        text += f"\n\n{labels['refusal_closest']} {links}"
    return text


def answer_view(result: dict, labels: dict, turn: int) -> tuple[str, list[dict]]:
    """The answer's chat text with linked ``[n]``s (or, for a refusal, the next steps and
    linked closest articles) and what those links open, for answer number ``turn``."""
    if result.get("refused"):
        closest = closest_passages(result)
        text = f"{result['answer']}\n\n{refusal_hint(closest, turn, labels)}"
        return text, closest
    cites = result["citations"]
    text = link_citations(format_answer(result, labels), cites, turn)
    return text + cited_sources(cites, turn, labels), cites


def where_and_when(c: dict, labels: dict | None = None) -> str:
    """A cited article's outlet and date ("Tengrinews, 2015-03-12"); with ``labels`` an
    unknown date is said so, without them it is left out."""
    date = c.get("date") or (labels["no_date"] if labels else "")
    return ", ".join(part for part in (c.get("source") or "", date) if part)


def cited_sources(citations: list[dict], turn: int, labels: dict) -> str:
    """Below an answer: each cited article's outlet and date, so a reported event says
    which day's article it comes from; each ``[n]`` opens the citation like in the text."""
    if not citations:
        return ""
    lines = []
    for c in citations:
        tip = html.escape(f"{c['title']}: {' '.join(c['text'].split())}", quote=True)
        link = f'<a class="cite" href="#cite-{turn}-{c["n"]}" title="{tip}">[{c["n"]}]</a>'
        lines.append(
            f"{link} {html.escape(where_and_when(c, labels))} — "
            f"<span class='doc'>{html.escape(c['title'])}</span>"
        )
    head = html.escape(labels["sources_head"])
    return f"\n\n<small class='sources'>{head}:<br>{'<br>'.join(lines)}</small>"


def citation_choices(citations: list[dict]) -> list[tuple[str, int]]:
    out = []
    for i, c in enumerate(citations):
        when = where_and_when(c)
        out.append((f"[{c['n']}] {c['title']} — {when + ' — ' if when else ''}{c['file']}", i))
    return out


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


def render_timeline(entries: list[dict], query: str, labels: dict = RU) -> str:
    """Timeline entries, oldest first: date, outlet, the sentence with the query's words
    marked; each sentence is a link (``#tl-i``) that opens its article at it."""
    if not entries:
        return f"<p>{html.escape(labels['timeline_none'])}</p>"
    tip = html.escape(labels["open_entry"], quote=True)
    out = [f"<p><small>{html.escape(labels['timeline_count'].format(n=len(entries)))}</small></p>"]
    for i, e in enumerate(entries):
        when = html.escape(e["date"])
        if e.get("date_from") == "sentence":
            when += f" <small>({html.escape(labels['timeline_year_from_text'])})</small>"
        outlet = (
            f"<span class='doc'>{html.escape(e['source'])}</span> · " if e.get("source") else ""
        )
        body = mark_words(" ".join(e["text"].split()), query)
        out.append(
            f"<div class='tl-entry'><div class='tl-date'>{when}</div><div class='tl-body'>"
            f"<div class='tl-meta'>{outlet}<span class='doc'>{html.escape(e['title'])}</span>"
            f"</div><a class='tl doc' href='#tl-{i}' title='{tip}'>{body}</a></div></div>"
        )
    return "\n".join(out)
