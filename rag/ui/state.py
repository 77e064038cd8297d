"""What one browser session holds, and what one chat step shows, as named fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import gradio as gr

from ..settings import Settings

KEEP = object()  # an output left as it is on the page


@dataclass
class Prefs:
    """The user's choices on the Settings tab (kept per session in ``gr.State``)."""

    k: int
    mode: str
    temperature: float
    use_llm: bool = True
    answer_mode: str | None = None  # with the LLM: "llm" or "quote"; None: the setting

    @classmethod
    def from_settings(cls, settings: Settings) -> Prefs:
        return cls(settings.context_passages, settings.search_mode, settings.temperature)

    def to_state(self) -> dict:
        return asdict(self)


@dataclass
class ChatView:
    """One update of the chat column; ``KEEP`` leaves an output unchanged.

    ``outputs`` lists the components in the order ``values`` yields them.
    """

    chat: list
    history: list
    evidence: Any = KEEP
    citations: list = field(default_factory=list)
    choices: Any = KEEP  # the citation radio's choices; [] clears it
    question: str = ""
    cited: Any = KEEP  # what the links of every answer so far open (citations, or the
    # closest passages of a refusal)
    turns: Any = KEEP  # every answer so far as exported (rag.export.Turn)
    # the row naming a time filter read from the question: updates of the row, its note
    # and its button (rag.ui.filters.question_chip)
    chip: Any = KEEP
    asked: Any = KEEP  # the question that chip belongs to, to answer again without it

    FIELDS = (
        "chat",
        "history",
        "evidence",
        "citations",
        "choices",
        "question",
        "cited",
        "turns",
        "chip",
        "asked",
    )

    def values(self) -> tuple:
        out = []
        for name in self.FIELDS:
            value = getattr(self, name)
            if name == "chip":
                out.extend((gr.update(),) * 3 if value is KEEP else value)
            elif value is KEEP:
                out.append(gr.update())
            elif name == "choices":
                out.append(gr.update(choices=value, value=None))
            else:
                out.append(value)
        return tuple(out)
