"""One limit on LLM answers at once, shared by the UI and the API of one server.

A scripted LLM, passed to the Engine, answers slowly and counts the answers it generates
at the same time; the real server (Gradio UI and /v1 API on one uvicorn) serves it.
"""

from __future__ import annotations

import threading
import time

import openai
import pytest
import uvicorn

from rag.engine import Engine
from rag.llm import SlotQueue
from rag.processes import free_port
from rag.ui.app import web_app

QUESTION = "Сколько терактов предотвращено с 2014 года?"
ANSWER = "С 2014 года предотвращено 11 терактов [1]."


class CountingLLM:
    """Streams ``ANSWER`` a word at a time over ``seconds``; records the peak number of
    answers being generated at once."""

    name = "counting"
    context_size = 4096

    def __init__(self, seconds: float = 1.5):
        self.seconds = seconds
        self.lock = threading.Lock()
        self.active = self.peak = self.calls = 0

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 3)

    def prompt_tokens(self, messages: list[dict]) -> int:
        return sum(self.count_tokens(m["content"]) + 4 for m in messages)

    def warm_prefix(self, fixed: list[dict]) -> int:
        return 0

    def stream(self, messages, max_tokens, temperature):
        with self.lock:
            self.active += 1
            self.calls += 1
            self.peak = max(self.peak, self.active)
        try:
            words = ANSWER.split(" ")
            for word in words:
                time.sleep(self.seconds / len(words))
                yield word + " "
        finally:
            with self.lock:
                self.active -= 1


def serve(engine: Engine):
    """The app's ASGI server in a thread of this process; returns (server, thread, url)."""
    port = free_port()
    config = uvicorn.Config(web_app(engine), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.1)
    return server, thread, f"http://127.0.0.1:{port}/"


@pytest.fixture
def counted(built_engine):
    """A server whose UI and API answer from one ``CountingLLM`` with two slots."""
    llm = CountingLLM()
    # a model server's settings (two parallel slots); the scripted LLM stands in for it
    settings = built_engine.settings.replace(llm_url="http://127.0.0.1:9/v1", llm_concurrency=2)
    engine = Engine(settings, llm=llm)
    engine.__dict__["embedder"] = built_engine.embedder
    server, thread, url = serve(engine)
    yield url, llm, engine
    server.should_exit = True
    thread.join(timeout=30)


def test_ui_and_api_together_never_exceed_the_llm_limit(counted):
    from gradio_client import Client

    url, llm, engine = counted
    assert engine.llm_slots() == 2
    errors: list[BaseException] = []
    answers: list[str] = []

    def ui_user() -> None:
        try:
            chat = Client(url, verbose=False).predict(QUESTION, [], api_name="/ask")[0]
            answers.append(str(chat[-1]["content"]))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    def api_user() -> None:
        try:
            client = openai.OpenAI(base_url=url + "v1", api_key="-", max_retries=0, timeout=120)
            reply = client.chat.completions.create(
                model="newsrag", messages=[{"role": "user", "content": QUESTION}]
            )
            answers.append(reply.choices[0].message.content)
        except BaseException as exc:
            errors.append(exc)

    users = [threading.Thread(target=f) for f in (ui_user, api_user) * 3]
    for user in users:
        user.start()
    for user in users:
        user.join(timeout=300)
    assert not errors, errors
    assert len(answers) == 6 and all("11" in a for a in answers), answers
    assert llm.calls == 6
    # three UI and three API answers: two at a time, never more (before: up to 2 + 2)
    assert llm.peak == 2
    assert llm.active == 0


def test_waiters_are_served_in_order_and_told_their_place():
    slots = SlotQueue(1)
    holder = slots.join()
    assert slots.take(holder, 0.01) == 0  # a free slot: taken at once
    first, second = slots.join(), slots.join()
    assert slots.take(first, 0.01) == 1
    assert slots.take(second, 0.01) == 2
    slots.release()
    assert slots.take(second, 0.01) == 2  # the free slot is the first waiter's
    assert slots.take(first, 0.01) == 0
    assert slots.take(second, 0.01) == 1
    slots.leave(second)  # Stop while waiting: the place is given up
    assert slots.waiting == 0
    slots.release()
    third = slots.join()
    assert slots.take(third, 0.01) == 0


def test_a_waiting_answer_shows_its_place_then_answers(built_engine):
    """Two questions on one slot: the second is told it is next in line while the first is
    generated, then gets its own answer; the UI's chat says the place too."""
    from rag.ui.chat import answer_steps
    from rag.ui.context import UIContext
    from rag.ui.labels import labels_for
    from rag.ui.state import Prefs

    llm = CountingLLM(seconds=2.0)
    # the LLM's own wording: its first token means it holds the slot (a quoted answer
    # shows its sentences before the LLM starts)
    engine = Engine(built_engine.settings.replace(answer_mode="llm"), llm=llm)
    engine.__dict__["embedder"] = built_engine.embedder
    engine.llm.every = 0.2
    first = engine.ask(QUESTION)
    for event in first:  # hold the only slot: the first answer is being generated
        if event["type"] == "token":
            break
    ctx = UIContext(engine, labels_for("ru"), prefs=None)
    prefs = Prefs.from_settings(engine.settings).to_state()
    shown: list[str] = []
    finish_first = threading.Thread(target=lambda: [None for _ in first])
    for view in answer_steps(ctx, QUESTION, [], [], prefs, []):
        shown.append(view.chat[-1]["content"])
        if shown[-1].startswith("⏳") and finish_first.ident is None:
            finish_first.start()  # the first answer goes on and frees the slot
    finish_first.join()
    queued = [s for s in shown if s.startswith("⏳")]
    assert queued and all(q == ctx.labels["queued"].format(n=1) for q in queued), shown
    assert "11" in shown[-1] and llm.peak == 1
