"""OpenAI-compatible chat API over the articles: ``/v1/models``, ``/v1/chat/completions``.

Any OpenAI client or chat front end can then ask the archive. Each answer comes from
``Engine.ask``, as in the UI: the text has ``[n]`` markers and the message (the last chunk
when streaming) carries the verified ``citations``. The login is the UI's: the password as
the API key (``Authorization: Bearer <password>``) or HTTP Basic with user and password.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import time
import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict

from .answer import QuestionError
from .engine import Engine
from .index import IndexError_
from .llm import LLMError

log = logging.getLogger(__name__)

MODEL = "newsrag"  # answers with the configured LLM (extractive when none is configured)
EXTRACTIVE = "newsrag-extractive"  # the best-matching sentences, no LLM


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # unknown OpenAI options are accepted, unused
    model: str = MODEL
    messages: list[Message]
    stream: bool = False
    temperature: float | None = None


class APIError(Exception):
    """An error returned as OpenAI's ``{"error": {...}}`` body with an HTTP status."""

    def __init__(self, status: int, message: str, kind: str):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "code": self.status}}


def _text(content: str | list | None) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def conversation(messages: list[Message]) -> tuple[str, list[tuple[str, str]]]:
    """The last user message and the earlier (question, answer) turns; system and tool
    messages are left out (the prompt is the app's own)."""
    turns = [(m.role, _text(m.content)) for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user":
        raise APIError(400, "the last message must be the user's question", "invalid_request_error")
    history, asked = [], None
    for role, text in turns[:-1]:
        if role == "user":
            asked = text
        elif asked is not None:
            history.append((asked, text))
            asked = None
    return turns[-1][1], history


def check_login(credentials: tuple[str, str] | None):
    """A FastAPI dependency: the UI's user and password, as a bearer key or HTTP Basic."""

    def check(request: Request) -> None:
        if credentials is None:
            return
        user, password = credentials
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        ok = False
        if scheme.lower() == "bearer":
            ok = hmac.compare_digest(value.strip().encode(), password.encode())
        elif scheme.lower() == "basic":
            try:
                given = base64.b64decode(value.strip()).decode()
            except ValueError:
                given = ""
            ok = hmac.compare_digest(given.encode(), f"{user}:{password}".encode())
        if not ok:
            raise APIError(
                401, "wrong or missing API key (the UI password)", "authentication_error"
            )

    return check


def create_router(engine: Engine, credentials: tuple[str, str] | None = None) -> APIRouter:
    """The ``/v1`` routes. Answers share the engine's LLM limit (``Engine.llm_slots_queue``) with
    the UI, so the two together never generate more answers at once than it allows."""
    router = APIRouter(prefix="/v1", dependencies=[Depends(check_login(credentials))])

    @router.get("/models")
    def models() -> dict:
        created = int(time.time())
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": created, "owned_by": "newsrag"}
                for name in (MODEL, EXTRACTIVE)
            ],
        }

    @router.post("/chat/completions")
    def chat(request: ChatRequest):
        if request.model not in (MODEL, EXTRACTIVE):
            raise APIError(404, f"unknown model {request.model!r}", "invalid_request_error")
        question, history = conversation(request.messages)
        run = Answering(engine, request, question, history)
        if request.stream:
            return StreamingResponse(run.chunks(), media_type="text/event-stream")
        return run.completion()

    return router


def install(app, router: APIRouter) -> None:
    """Add the routes and the OpenAI-style error bodies to a FastAPI app."""

    async def handler(_request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    app.add_exception_handler(APIError, handler)
    app.include_router(router)


class Answering:
    """One chat completion: ``Engine.ask`` events as an OpenAI response or SSE chunks."""

    def __init__(self, engine, request: ChatRequest, question, history):
        self.engine, self.request = engine, request
        self.question, self.history = question, history
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def events(self) -> Iterator[dict]:
        """The engine's events, errors from inside as ``APIError``."""
        try:
            yield from self.engine.ask(
                self.question,
                self.history,
                use_llm=self.request.model != EXTRACTIVE,
                temperature=self.request.temperature,
            )
        except QuestionError as exc:
            raise APIError(400, str(exc), "invalid_request_error") from exc
        except LLMError as exc:
            log.exception("answer failed")
            raise APIError(502, f"the LLM failed: {exc}", "llm_error") from exc
        except (IndexError_, OSError, RuntimeError) as exc:
            log.exception("answer failed")
            raise APIError(503, str(exc), "server_error") from exc

    def _envelope(self, kind: str, choice: dict) -> dict:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.request.model,
            "choices": [choice],
        }

    @staticmethod
    def _extra(result: dict) -> dict:
        return {
            "citations": result["citations"],
            "refused": result["refused"],
        }

    def completion(self) -> dict:
        result = next(e["result"] for e in self.events() if e["type"] == "done")
        message = {"role": "assistant", "content": result["answer"], **self._extra(result)}
        response = self._envelope(
            "chat.completion", {"index": 0, "message": message, "finish_reason": "stop"}
        )
        response["usage"] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        return response

    def chunks(self) -> Iterator[str]:
        """SSE lines: the role, the model's text as it comes, then a last chunk with the
        citations and the verified ``answer`` (which replaces the streamed draft where the
        checks changed it, e.g. into a refusal); an error ends the stream as an error chunk."""

        def sse(payload: dict) -> str:
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

        def chunk(delta: dict, finish: str | None = None) -> str:
            return sse(
                self._envelope(
                    "chat.completion.chunk", {"index": 0, "delta": delta, "finish_reason": finish}
                )
            )

        yield chunk({"role": "assistant", "content": ""})
        try:
            for event in self.events():
                if event["type"] == "token":
                    yield chunk({"content": event["text"]})
                elif event["type"] == "done":
                    result = event["result"]
                    extra = {**self._extra(result), "answer": result["answer"]}
                    yield chunk({"content": "", **extra}, finish="stop")
        except APIError as exc:
            yield sse(exc.body())
        yield "data: [DONE]\n\n"


def server_app(engine: Engine, blocks, auth: tuple[str, str] | None, **gradio_options):
    """One FastAPI app serving the API under ``/v1`` and the Gradio UI at ``/``, behind the
    same login; ``gradio_options`` go to ``gr.mount_gradio_app``."""
    import gradio as gr
    from fastapi import FastAPI

    app = FastAPI(title="newsrag", docs_url=None, redoc_url=None, openapi_url=None)
    install(app, create_router(engine, auth))
    return gr.mount_gradio_app(app, blocks, path="/", auth=auth, **gradio_options)
