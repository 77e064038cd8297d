"""The events of answering one question, in the order ``AnswerPipeline.run`` yields them.

Each has ``to_dict()``: the plain form the UI, the API, the CLI and the export consume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .citations import Citation, Passage
from .signals import Signals
from .timefilter import Filters


@dataclass(frozen=True)
class Standalone:
    """The question as searched: a follow-up rewritten to stand on its own."""

    question: str

    def to_dict(self) -> dict:
        return {"type": "standalone", "question": self.question}


@dataclass(frozen=True)
class Evidence:
    """The passages the answer will use; ``provisional`` ones are shown while a
    follow-up is being rewritten and are replaced by the final ones."""

    passages: list[Passage]
    provisional: bool = False

    def to_dict(self) -> dict:
        return {
            "type": "evidence",
            "passages": [p.to_dict() for p in self.passages],
            "provisional": self.provisional,
        }


@dataclass(frozen=True)
class Token:
    """A piece of the answer as it is generated (the whole text for a non-LLM answer)."""

    text: str

    def to_dict(self) -> dict:
        return {"type": "token", "text": self.text}


@dataclass(frozen=True)
class Queued:
    """Others' answers hold the model: this one's place in line (1: next)."""

    position: int

    def to_dict(self) -> dict:
        return {"type": "queued", "position": self.position}


@dataclass
class AnswerResult:
    """The verified answer with its citations, the passages it used and timings."""

    question: str
    standalone_question: str
    answer: str
    raw_answer: str
    refused: bool
    weak_evidence: bool
    # why the LLM's answer was replaced by the extractive one: "echo" (it only repeated
    # the question or a headline), "language" (not the question's) or "off_type" (not
    # the kind of answer asked for, e.g. a date for an amount); None when it was not
    fallback: str | None
    citations: list[Citation]
    unsupported: list[str]
    passages: list[Passage]
    cited_numbers_raw: list[int]
    timings: dict[str, float] = field(default_factory=dict)
    llm: str | None = None
    filters: Filters | None = None
    # what the answer-or-refuse decision weighed (rag.signals); None without evidence
    signals: Signals | None = None

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.answer,
            "raw_answer": self.raw_answer,
            "refused": self.refused,
            "weak_evidence": self.weak_evidence,
            "fallback": self.fallback,
            "citations": [c.to_dict() for c in self.citations],
            "unsupported": self.unsupported,
            "passages": [p.to_dict() for p in self.passages],
            "cited_numbers_raw": self.cited_numbers_raw,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "llm": self.llm,
            "filters": self.filters.to_dict() if self.filters else None,
            "signals": asdict(self.signals) if self.signals else None,
        }


@dataclass(frozen=True)
class Draft:
    """A verified answer shown while the LLM still works (``answer_mode="quote"``: the
    article sentences, before the LLM's lead); the ``Done`` result replaces it."""

    result: AnswerResult

    def to_dict(self) -> dict:
        return {"type": "draft", "result": self.result.to_dict()}


@dataclass(frozen=True)
class Done:
    """The last event: the final result."""

    result: AnswerResult

    def to_dict(self) -> dict:
        return {"type": "done", "result": self.result.to_dict()}


Event = Standalone | Evidence | Queued | Token | Draft | Done
