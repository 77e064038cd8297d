"""The OpenAI-compatible API for real: the UI's server process, the official openai client."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import openai
import pytest

from rag.api import ChatRequest, Message, conversation
from rag.engine import Engine
from rag.processes import stop_server
from rag.settings import Settings
from rag.ui.app import build_app
from tests.fault_llm import LocalServer
from tests.test_ui import _start

USER, PASSWORD = "reader", "s3cret-key"
QUESTION = "Сколько терактов предотвращено с 2014 года?"
SOURCE = "000_14c9b7630dbfab34.txt"


@pytest.fixture(scope="module")
def api_server(tmp_path_factory, built_engine):
    """One server for the module: the tiny LLM, a login, the API under /v1."""
    tmp = tmp_path_factory.mktemp("api")
    proc, url = _start(
        tmp,
        built_engine,
        RAG_USERNAME=USER,
        RAG_PASSWORD=PASSWORD,
        RAG_LLM_MODEL="smollm2-135m-instruct",
        RAG_LLM_CONTEXT="2048",
    )
    yield url, tmp / "corpus"
    stop_server(proc)


def _client(url: str, key: str = PASSWORD) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "v1", api_key=key, max_retries=0, timeout=120)


def _check_citations(citations: list[dict], corpus: Path) -> None:
    assert citations
    for c in citations:
        assert set(c) >= {"n", "file", "title", "start", "end", "text"}
        assert (corpus / c["file"]).read_text("utf-8")[c["start"] : c["end"]] == c["text"]


def test_models_are_listed(api_server):
    url, _ = api_server
    ids = [m.id for m in _client(url).models.list()]
    assert ids == ["newsrag", "newsrag-extractive"]


def test_wrong_password_is_refused(api_server):
    url, _ = api_server
    with pytest.raises(openai.AuthenticationError) as caught:
        _client(url, "wrong").models.list()
    assert caught.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        _client(url, "wrong").chat.completions.create(
            model="newsrag-extractive", messages=[{"role": "user", "content": QUESTION}]
        )


def test_http_basic_login(api_server):
    import httpx

    url, _ = api_server
    assert httpx.get(url + "v1/models", auth=(USER, PASSWORD)).status_code == 200
    assert httpx.get(url + "v1/models", auth=(USER, "wrong")).status_code == 401
    assert httpx.get(url + "v1/models").status_code == 401


def test_answer_with_citations(api_server):
    url, corpus = api_server
    reply = _client(url).chat.completions.create(
        model="newsrag-extractive", messages=[{"role": "user", "content": QUESTION}]
    )
    message = reply.choices[0].message
    assert "11" in message.content and "[1]" in message.content
    citations = message.model_extra["citations"]
    _check_citations(citations, corpus)
    assert citations[0]["file"] == SOURCE


def test_streamed_answer_with_the_llm(api_server):
    url, corpus = api_server
    stream = _client(url).chat.completions.create(
        model="newsrag", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    assert len(chunks) >= 3  # the role, the text (the quoted sentences at once), the end
    last = chunks[-1].choices[0]
    assert last.finish_reason == "stop"
    extra = last.delta.model_extra
    assert "citations" in extra and "answer" in extra
    if not extra["refused"]:  # the tiny model may find no answer; then nothing is cited
        _check_citations(extra["citations"], corpus)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed.strip()
    if not extra["refused"]:  # the final answer keeps the sentences (the LLM's lead above)
        assert extra["answer"].endswith(streamed.strip())


def test_streamed_extractive_answer(api_server):
    url, corpus = api_server
    stream = _client(url).chat.completions.create(
        model="newsrag-extractive", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    extra = chunks[-1].choices[0].delta.model_extra
    _check_citations(extra["citations"], corpus)
    assert "11" in extra["answer"]


def test_follow_up_uses_the_history(api_server):
    url, _ = api_server
    client = _client(url)
    follow_up = "А кто об этом рассказал?"
    first = client.chat.completions.create(
        model="newsrag-extractive", messages=[{"role": "user", "content": QUESTION}]
    )
    reply = client.chat.completions.create(
        model="newsrag-extractive",
        messages=[
            {"role": "system", "content": "ignored"},
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": follow_up},
        ],
    )
    message = reply.choices[0].message
    assert message.model_extra["citations"][0]["file"] == SOURCE
    alone = client.chat.completions.create(
        model="newsrag-extractive", messages=[{"role": "user", "content": follow_up}]
    )
    assert alone.choices[0].message.content != message.content  # the history made the answer


def test_bad_requests_are_errors(api_server):
    url, _ = api_server
    client = _client(url)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="newsrag-extractive", messages=[{"role": "user", "content": " ?! "}]
        )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])


def test_conversation_pairs_turns():
    messages = [
        Message(role="system", content="s"),
        Message(role="user", content="q1"),
        Message(role="assistant", content="a1"),
        Message(role="user", content=[{"type": "text", "text": "q2"}]),
    ]
    assert conversation(ChatRequest(messages=messages).messages) == ("q2", [("q1", "a1")])


class SlowLLMServer(LocalServer):
    """An OpenAI-compatible chat server that holds each answer for ``delay`` seconds, or
    answers HTTP 500 when ``fail``; it records when each request started and ended."""

    def __init__(self, delay: float = 0.0, fail: bool = False):
        self.delay, self.fail, self.spans = delay, fail, []
        super().__init__(_SlowHandler)


class _SlowHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        started = time.time()
        if self.server.fail:
            self.send_error(500, "model crashed")
            return
        time.sleep(self.server.delay)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        piece = {"choices": [{"delta": {"content": "Предотвращено 11 терактов [1]."}}]}
        self.wfile.write(f"data: {json.dumps(piece)}\n\ndata: [DONE]\n\n".encode())
        self.server.spans.append((started, time.time()))

    def log_message(self, *args):
        pass


def test_ui_concurrency_follows_the_model_server_slots():
    local = build_app(Engine(Settings.from_env()))
    remote = build_app(
        Engine(Settings.from_env(llm_url="http://127.0.0.1:9/v1", llm_concurrency=3))
    )
    for app, slots in ((local, 1), (remote, 3)):
        answering = [f for f in app.fns.values() if f.concurrency_id == "llm"]
        assert answering and all(f.concurrency_limit == slots for f in answering)


@pytest.fixture(scope="module")
def slow_llm():
    server = SlowLLMServer(delay=3.0)
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def remote_api(tmp_path_factory, built_engine, slow_llm):
    """The app answering from the slow model server with two slots, no login."""
    tmp = tmp_path_factory.mktemp("remote")
    proc, url = _start(tmp, built_engine, RAG_LLM_URL=slow_llm.url, RAG_LLM_CONCURRENCY="2")
    yield url
    stop_server(proc)


def test_api_answers_in_parallel_with_model_server_slots(remote_api, slow_llm):
    client = _client(remote_api, "any")
    results = []

    def ask():
        results.append(
            client.chat.completions.create(
                model="newsrag", messages=[{"role": "user", "content": QUESTION}]
            )
        )

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    spans = sorted(slow_llm.spans)[-3:]
    # two slots: the first two overlap, the third waits for one of them
    assert spans[1][0] < spans[0][1]
    assert spans[2][0] >= min(spans[0][1], spans[1][1]) - 0.05


def test_model_server_error_is_an_error(tmp_path, built_engine):
    failing = SlowLLMServer(fail=True)
    proc, url = _start(tmp_path, built_engine, RAG_LLM_URL=failing.url)
    try:
        client = _client(url, "any")
        messages = [{"role": "user", "content": QUESTION}]
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="newsrag", messages=messages)
        assert caught.value.status_code == 502
        with pytest.raises(openai.APIError):
            list(client.chat.completions.create(model="newsrag", messages=messages, stream=True))
    finally:
        stop_server(proc)
        failing.shutdown()
