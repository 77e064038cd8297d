"""A small in-process stand-in for the LLM, injected through ``Engine(llm=...)``: it
replies with scripted texts and records the prompts it was given, so answering can be
tested without loading a model."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rag.evidence import approx_tokens


class ScriptedLLM:
    """Replies with ``replies`` in turn (the last one again once they run out); a reply
    may be a function of the messages. Token counts are the approximate ones answering
    uses without an LLM, so the passages are those of an extractive answer. Asked to
    judge, it gives ``judgement`` (log-odds of "yes") and records the prompt."""

    name = "scripted"

    def __init__(
        self,
        *replies: str | Callable[[list[dict]], str],
        context_size: int = 2048,
        judgement: float = 0.0,
    ):
        self.replies = list(replies)
        self.context_size = context_size
        self.prompts: list[list[dict]] = []
        self.judgement = judgement
        self.judged: list[list[dict]] = []

    def judge(self, messages: list[dict], yes: tuple[str, ...], no: tuple[str, ...]) -> float:
        self.judged.append(messages)
        return self.judgement

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def prompt_tokens(self, messages: list[dict]) -> int:
        return sum(self.count_tokens(m["content"]) + 4 for m in messages)

    def warm_prefix(self, fixed: list[dict]) -> int:
        return 0

    def stream(self, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        self.prompts.append(messages)
        reply = self.replies[min(len(self.prompts), len(self.replies)) - 1]
        yield reply(messages) if callable(reply) else reply
