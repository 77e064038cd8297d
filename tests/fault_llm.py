"""A tiny OpenAI-compatible chat server on 127.0.0.1 that fails on purpose.

The first path segment picks the behaviour: ``/ok/v1``, ``/http500/v1``, ``/model404/v1``,
``/error_event/v1`` (two pieces, then an error event), ``/cut/v1`` (two pieces, then the
connection closes) and ``/slow/v1`` (silent for ``SLOW_SECONDS``). A request that does not
ask to stream (the LLM's one-token judgement) gets one JSON completion: with the
``TOP_LOGPROBS`` of its token from ``/ok/v1``, with none from ``/nologprobs/v1``."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_SECONDS = 5.0
ANSWER = "В 2014 году предотвращено 11 терактов [1]."
TOP_LOGPROBS = [("Да", -0.2), (" нет", -2.0), ("Нет", -3.0), ("The", -5.0)]


def _chunk(text: str | None, finish: str | None = None) -> bytes:
    delta = {"content": text} if text is not None else {}
    body = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


def _completion(logprobs: bool) -> dict:
    """A one-token chat completion, with the log-probabilities of its token if asked."""
    choice: dict = {"index": 0, "message": {"role": "assistant", "content": "Да"}}
    choice["finish_reason"] = "length"
    if logprobs:
        top = [{"token": t, "logprob": p} for t, p in TOP_LOGPROBS]
        choice["logprobs"] = {"content": [{"token": "Да", "logprob": -0.2, "top_logprobs": top}]}
    return {"choices": [choice]}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer()  # the timeout test's client gives up mid-answer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(length) or b"{}")
        mode = self.path.strip("/").split("/")[0]
        if mode == "http500":
            return self._send(500, {"error": {"message": "CUDA out of memory", "code": 500}})
        if mode == "model404":
            return self._send(404, {"error": {"message": "model 'nope' not found"}})
        if not request.get("stream"):
            return self._send(200, _completion(mode != "nologprobs"))
        if mode == "slow":
            time.sleep(SLOW_SECONDS)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        words = ANSWER.split(" ")
        for word in words[:2]:
            self.wfile.write(_chunk(word + " "))
            self.wfile.flush()
        if mode == "error_event":
            error = {"error": {"message": "context shift failed", "type": "server_error"}}
            self.wfile.write(f"data: {json.dumps(error)}\n\n".encode())
            return
        if mode == "cut":
            return  # the connection closes without finish_reason or [DONE]
        self.wfile.write(_chunk(" ".join(words[2:])))
        self.wfile.write(_chunk(None, "stop"))
        self.wfile.write(b"data: [DONE]\n\n")

    def do_GET(self) -> None:
        self._send(200, {"data": [{"id": "fault"}]})


class LocalServer(ThreadingHTTPServer):
    """An HTTP server on a free loopback port, serving from a daemon thread at once."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        super().__init__(("127.0.0.1", 0), handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def url(self) -> str:
        """The OpenAI-compatible API root."""
        return f"{self.base_url}/v1"


def start() -> tuple[ThreadingHTTPServer, str]:
    """The running server and its base URL (add ``/<mode>/v1``)."""
    server = LocalServer(_Handler)
    return server, server.base_url
