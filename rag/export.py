"""A conversation as Markdown or JSON, each answer with its sources resolved.

Pure functions over the answer results that ``rag.answer.ask`` gives: the UI offers them
as downloads, ``rag ask --markdown`` prints them for one question. A citation is written
out with what a reader needs to find it again without the app: the article's title,
file, date, the character offsets of the cited span and the cited sentence itself.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

WORDS = {
    "ru": {
        "heading": "Разговор с архивом новостей",
        "exported": "Экспортировано",
        "sources": "Источники",
        "no_sources": "Источников нет: в найденных статьях ответа не оказалось.",
        "chars": "символы",
        "no_date": "дата неизвестна",
        "extractive": "Ответ составлен из предложений статей.",
        "unsupported": "не подтверждено источниками",
    },
    "en": {
        "heading": "Conversation with the news archive",
        "exported": "Exported",
        "sources": "Sources",
        "no_sources": "No sources: the articles found did not hold the answer.",
        "chars": "characters",
        "no_date": "date unknown",
        "extractive": "The answer is made of sentences from the articles.",
        "unsupported": "not supported by the sources",
    },
}


@dataclass(frozen=True)
class Source:
    """One citation of an answer, resolved to its place in the article."""

    n: int
    title: str
    file: str
    date: str | None
    start: int
    end: int
    sentence: str


@dataclass(frozen=True)
class Turn:
    """One question and its answer, as exported."""

    question: str
    answer: str
    sources: list[Source] = field(default_factory=list)
    refused: bool = False
    made_of_sentences: bool = False  # the article sentences, not the model's words
    unsupported: list[str] = field(default_factory=list)

    @classmethod
    def from_result(cls, result: dict) -> Turn:
        """From the ``result`` of ``ask``'s "done" event."""
        sources = [
            Source(
                n=c["n"],
                title=c["title"],
                file=c["file"],
                date=c.get("date"),
                start=c["start"],
                end=c["end"],
                sentence=" ".join(c["text"].split()),
            )
            for c in result.get("citations", [])
        ]
        return cls(
            question=result["question"],
            answer=result["answer"],
            sources=sources,
            refused=bool(result.get("refused")),
            made_of_sentences=made_of_sentences(result),
            unsupported=list(result.get("unsupported", [])),
        )


def made_of_sentences(result: dict) -> bool:
    """Whether the answer is article sentences rather than the model's own text: there
    was no model, or its answer gave way to the best-matching sentences (whatever the
    reason, which stays in ``result["fallback"]`` for logs and ``rag ask --json``)."""
    if result.get("refused"):
        return False
    return bool(result.get("fallback")) or result.get("llm") is None


def _words(lang: str) -> dict[str, str]:
    return WORDS.get(lang, WORDS["ru"])


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.splitlines() or [""])


def to_markdown(turns: list[Turn], lang: str = "ru", exported_at: str | None = None) -> str:
    """The conversation as a Markdown document; each answer lists its sources."""
    words = _words(lang)
    out = [f"# {words['heading']}", ""]
    if exported_at:
        out += [f"_{words['exported']}: {exported_at}_", ""]
    for i, turn in enumerate(turns, 1):
        out += [f"## {i}. {' '.join(turn.question.split())}", "", turn.answer, ""]
        if turn.made_of_sentences:
            out += [f"_{words['extractive']}_", ""]
        for sentence in turn.unsupported:
            out += [f"- ⚠️ {sentence} ({words['unsupported']})"]
        if turn.unsupported:
            out.append("")
        if not turn.sources:
            if turn.refused:
                out += [f"_{words['no_sources']}_", ""]
            continue
        out += [f"**{words['sources']}**", ""]
        for s in turn.sources:
            date = s.date or words["no_date"]
            out += [
                f"[{s.n}] {s.title} — `{s.file}`, {date}, {words['chars']} {s.start}–{s.end}",
                "",
                _quote(s.sentence),
                "",
            ]
    return "\n".join(out).rstrip() + "\n"


def to_json(turns: list[Turn], exported_at: str | None = None) -> str:
    """The conversation as JSON: ``{"exported_at", "turns": [{question, answer, sources}]}``."""
    data = {"exported_at": exported_at, "turns": [asdict(t) for t in turns]}
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"
