"""Follow-up questions: which need the conversation, and the self-contained query for them.

A follow-up that refers back ("А когда её раскрыли?") is rewritten by the LLM into a
question that names its subject; without an LLM (or while it rewrites) the previous
question joined to the follow-up serves as the search query.
"""

from __future__ import annotations

import re

from . import prompts
from .lexical import tokenize

# Words that point back into the conversation; a question without any of them (and not
# elliptic: "А ...?", two words) is searched as it is, saving the LLM rewrite (~7 s).
_POINTS_BACK = re.compile(
    r"\b(?:он|она|оно|они|его|её|ее|их|ему|ей|им|ими|него|неё|нее|нему|ней|ним|них|нём|нем"
    r"|этот|эта|это|эти|этого|этой|этому|этом|этих|этим|этими|эту|тот|та|те|того|той|том"
    r"|тех|там|тогда|туда|оттуда|такой|такая|такое|такие|ещё|еще|также|тоже|последн\w*"
    r"|he|she|it|they|him|her|them|his|its|their|this|that|these|those|there|then|also)\b",
    re.IGNORECASE,
)


def refers_back(question: str) -> bool:
    """Whether a question needs the conversation to be understood (then it is rewritten)."""
    text = question.strip().lower()
    return (
        bool(_POINTS_BACK.search(text))
        or text.startswith(("а ", "и ", "но ", "and ", "but ", "what about", "how about"))
        or len(tokenize(text)) < 3
    )


def needs_rewrite(history_turns: int, question: str, history) -> bool:
    """A follow-up that refers back, when the rewrite may see history at all."""
    return history_turns > 0 and bool(history) and refers_back(question)


def contextual_query(question: str, history: list[tuple[str, str]]) -> str:
    """The follow-up with the previous question, which names its subject: the search
    query without the LLM, and while the LLM rewrites the question."""
    return f"{history[-1][0]} {question}"


def standalone_question(
    question: str, history: list[tuple[str, str]] | None, history_turns: int, llm=None
) -> str:
    """The question as a self-contained search query (follow-ups need their context).

    The rewrite sees the last ``history_turns`` turns; 0 means no history at all.
    """
    if not needs_rewrite(history_turns, question, history):
        return question
    fallback = contextual_query(question, history)
    if llm is None:
        return fallback
    rewritten = "".join(
        llm.stream(prompts.rewrite_messages(history[-history_turns:], question), 64, 0.0)
    ).strip()
    rewritten = rewritten.splitlines()[0].strip(' «»"') if rewritten else ""
    if not rewritten or len(rewritten) > 3 * len(fallback) + 50:
        return fallback
    return rewritten
