"""RAG_HISTORY_TURNS decides how much of the conversation the follow-up rewrite sees."""

from __future__ import annotations

from rag.engine import Engine
from rag.settings import Settings


class RecordingLLM:
    """Answers every rewrite with a fixed question and keeps the prompts it was given."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def stream(self, messages, max_tokens, temperature):
        self.prompts.append(messages[-1]["content"])
        yield "Когда раскрыли группировку в Астане?"


HISTORY = [
    ("первый вопрос про выборы", "ответ один"),
    ("второй вопрос про погоду", "ответ два"),
    ("третий вопрос про группировку", "ответ три"),
]


def _rewrite(turns: int) -> tuple[str, RecordingLLM]:
    engine = Engine(Settings.from_env(history_turns=turns))
    llm = RecordingLLM()
    return engine.standalone_question("А когда её раскрыли?", HISTORY, llm=llm), llm


def test_rewrite_sees_the_configured_number_of_turns():
    _, llm = _rewrite(1)
    assert "третий" in llm.prompts[0] and "второй" not in llm.prompts[0]
    _, llm = _rewrite(3)
    assert all(word in llm.prompts[0] for word in ("первый", "второй", "третий"))


def test_zero_turns_means_no_history():
    question, llm = _rewrite(0)
    assert llm.prompts == []
    assert question == "А когда её раскрыли?"
