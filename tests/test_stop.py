"""Stop and a closed tab free the LLM at once, in the browser.

The app answers from a model server with one slot that drips a long answer a word at a
time and records, per request, when it started and whether the client hung up before
the end. If an abandoned answer kept the slot, the next user's request would reach the
server only after the whole abandoned answer (``WORDS * STEP_S`` seconds)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from rag.processes import stop_server
from tests.fault_llm import LocalServer
from tests.test_ui import ARTIFACTS, CHROMIUM_ARGS, _start

QUESTION = "Сколько терактов предотвращено с 2014 года?"
WORDS = 400  # a long answer: 400 words at STEP_S each take 80 s
STEP_S = 0.2


class DrippingLLMServer(LocalServer):
    """OpenAI-compatible chat streaming, one word every ``STEP_S`` seconds."""

    def __init__(self):
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        super().__init__(_DrippingHandler)


class _DrippingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        record = {"started": time.time(), "sent": 0, "hung_up": None, "finished": None}
        with self.server.lock:
            self.server.requests.append(record)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for i in range(WORDS):
                piece = {"choices": [{"delta": {"content": f"слово{i} "}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(piece, ensure_ascii=False)}\n\n".encode())
                self.wfile.flush()
                record["sent"] = i + 1
                time.sleep(STEP_S)
            end = {"choices": [{"delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()
            record["finished"] = time.time()
        except (BrokenPipeError, ConnectionResetError):
            record["hung_up"] = time.time()

    def log_message(self, *args):
        pass


@pytest.fixture
def dripping():
    server = DrippingLLMServer()
    yield server
    server.shutdown()


def _ask(page, question: str) -> None:
    page.locator("#question textarea").fill(question)
    page.locator("#send").click()


@pytest.mark.browser
def test_stop_and_a_closed_tab_free_the_llm_for_the_next_user(tmp_path, built_engine, dripping):
    from playwright.sync_api import expect, sync_playwright

    # the LLM's own wording streams its words, which is how the test sees them arrive
    proc, url = _start(
        tmp_path,
        built_engine,
        RAG_LLM_URL=dripping.url,
        RAG_LLM_CONCURRENCY="1",
        RAG_ANSWER_MODE="llm",
    )
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)

            def user():
                page = browser.new_context(locale="ru-RU").new_page()
                page.goto(url)
                expect(page.locator("#question textarea")).to_be_visible(timeout=60_000)
                return page

            # 1. A asks, the answer streams, A presses Stop
            first, second = user(), user()
            _ask(first, QUESTION)
            expect(first.locator("#chatbot")).to_contain_text("слово3", timeout=120_000)
            first.locator("#stop").click()
            stopped = time.time()
            # B asks right after: B's answer starts streaming, A's no longer grows
            _ask(second, QUESTION)
            expect(second.locator("#chatbot")).to_contain_text("слово1", timeout=120_000)
            b_first_token = time.time()
            shown_a = first.locator("#chatbot").inner_text()
            ARTIFACTS.mkdir(exist_ok=True)
            first.screenshot(path=str(ARTIFACTS / "ui_stopped.png"), full_page=True)
            second.screenshot(path=str(ARTIFACTS / "ui_after_stop.png"), full_page=True)

            # 2. C asks, the answer streams, C closes the tab; D asks
            third, fourth = user(), user()
            _ask(third, QUESTION)
            expect(third.locator("#chatbot")).to_contain_text("слово3", timeout=120_000)
            third.context.close()
            closed = time.time()
            _ask(fourth, QUESTION)
            expect(fourth.locator("#chatbot")).to_contain_text("слово1", timeout=120_000)
            d_first_token = time.time()
            browser.close()
    finally:
        stop_server(proc)

    a, b, c, d = dripping.requests[:4]
    # the abandoned answers were cut off by the app, long before their end
    assert a["hung_up"] and a["finished"] is None and a["sent"] < WORDS / 4, a
    assert c["hung_up"] and c["finished"] is None and c["sent"] < WORDS / 4, c
    # the next user's request reached the one slot once the abandoned one hung up, not
    # after the whole abandoned answer (WORDS * STEP_S = 80 s after it started)
    assert a["hung_up"] <= b["started"] + 0.5 and b["started"] < a["started"] + WORDS * STEP_S / 4
    assert c["hung_up"] <= d["started"] + 0.5 and d["started"] < c["started"] + WORDS * STEP_S / 4
    assert b_first_token - stopped < WORDS * STEP_S / 4
    assert d_first_token - closed < WORDS * STEP_S / 4
    assert "слово" in shown_a and f"слово{a['sent'] + 5}" not in shown_a
