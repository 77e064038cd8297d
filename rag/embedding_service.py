"""``rag serve-embeddings``: the in-process embedder behind an OpenAI-compatible
``/v1/embeddings`` and ``/v1/models``, so one machine (a GPU box) can embed for others
that set ``RAG_EMBEDDING_URL``.

Like other embedding servers, it embeds the text as given: the client adds the model's
query/document prompts (see ``rag.remote_embeddings``).
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel

from .settings import Settings

MAX_INPUTS = 2048


class EmbeddingRequest(BaseModel):
    """The fields of OpenAI's embeddings request (text input only)."""

    input: str | list[str]
    model: str | None = None
    encoding_format: str = "float"
    user: str | None = None
    dimensions: int | None = None


def create_app(embedder, served_name: str):
    """A FastAPI app serving ``embedder`` (anything with ``embed_raw``, ``count_tokens``, ``dim``)
    under the model name ``served_name``."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    app = FastAPI(title="newsrag embeddings")
    lock = threading.Lock()  # one batch at a time: the model already uses every core

    def error(status: int, message: str, code: str = "invalid_request") -> JSONResponse:
        body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
        return JSONResponse(body, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(400, f"invalid request: {where}: {first.get('msg', 'bad value')}")

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        entry = {"id": served_name, "object": "model", "owned_by": "newsrag"}
        return {"object": "list", "data": [entry | {"dimension": embedder.dim}]}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/embeddings", response_model=None)
    def embeddings(request: EmbeddingRequest) -> dict[str, Any] | JSONResponse:
        if request.model and request.model != served_name:
            return error(
                404,
                f"model {request.model!r} is not served; this serves {served_name!r}",
                "model_not_found",
            )
        if request.encoding_format != "float":
            return error(400, "only encoding_format 'float' is supported")
        if request.dimensions not in (None, embedder.dim):
            return error(400, f"this model gives {embedder.dim} dimensions")
        texts = [request.input] if isinstance(request.input, str) else request.input
        if not texts or len(texts) > MAX_INPUTS:
            return error(400, f"input must hold 1 to {MAX_INPUTS} texts")
        with lock:
            vectors = embedder.embed_raw(texts)
            tokens = sum(embedder.count_tokens(texts))
        data = [
            {"object": "embedding", "index": i, "embedding": v.tolist()}
            for i, v in enumerate(vectors)
        ]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return {"object": "list", "data": data, "model": served_name, "usage": usage}

    return app


def serve(settings: Settings, host: str, port: int) -> None:
    """Load the configured model in this process and serve it until interrupted."""
    import uvicorn

    from .embeddings import Embedder

    embedder = Embedder(settings)  # never the server client: this is the server
    app = create_app(embedder, settings.embedding_model)
    print(
        f"serving {settings.embedding_model} ({embedder.dim} dimensions, {embedder.dtype}) "
        f"at http://{host}:{port}/v1",
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
