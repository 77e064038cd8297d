"""Embeddings from an OpenAI-compatible ``/v1/embeddings`` server (text-embeddings-inference,
vLLM, Infinity, llama-server, or ``rag serve-embeddings``) instead of an in-process model.

The server embeds text as given, so this client adds the same query/document prompts the
in-process model would, and counts tokens (for chunking) with the model's own tokenizer
from its local folder: an index built through the server has the same passages, and
vectors equal to float tolerance. Transient failures (a server still starting, 5xx, 429,
timeouts) are retried with backoff for a bounded time; then, and on any other failure, an
``EmbeddingServerError`` says what went wrong. A wrong answer never becomes zero vectors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import httpx
import numpy as np

from .embeddings import document_inputs, model_prompts, resolve_embedding_model
from .errors import RagError
from .llm import _error_text
from .settings import Settings

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
FIRST_DELAY, MAX_DELAY = 0.25, 4.0


class EmbeddingServerError(RagError, RuntimeError):
    """The embedding server is down, refused a request, or answered something unusable."""


class _Transient(Exception):
    """A failure worth retrying; its message ends up in the final error."""


class RemoteEmbedder:
    """The ``Embedder`` interface (embed_documents, embed_queries, count_tokens, dim,
    fingerprint) over HTTP. ``sleep`` is injectable so tests need not wait."""

    dtype = "server"

    def __init__(self, settings: Settings, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.url = settings.embedding_url.rstrip("/")
        self.model_path = resolve_embedding_model(settings)
        self.name = f"{settings.embedding_model} @ {self.url}"
        self.query_prompt, self.document_prompt = model_prompts(
            _stored_prompts(Path(self.model_path)), self.model_path, settings
        )
        self.timeout = httpx.Timeout(settings.embedding_timeout, connect=10.0)
        headers = {"Accept": "application/json"}
        if settings.embedding_api_key:
            headers["Authorization"] = f"Bearer {settings.embedding_api_key}"
        self._headers = headers
        self._sleep = sleep

    @cached_property
    def _tokenizer(self):
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(self.model_path)
        except OSError as exc:
            raise EmbeddingServerError(
                f"cannot load the tokenizer of {self.settings.embedding_model!r} ({exc}); with "
                "RAG_EMBEDDING_URL the model's folder is still needed here for chunking: run "
                "`rag models` or set RAG_EMBEDDING_MODEL to a local folder"
            ) from exc

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self._tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    @cached_property
    def served_model(self) -> str:
        """The model name sent with every request: the setting, else the server's only one."""
        if self.settings.embedding_server_model:
            return self.settings.embedding_server_model
        listing = self._request("GET", "/models")
        ids = [m.get("id") for m in listing.get("data", []) if isinstance(m, dict)]
        ids = [i for i in ids if isinstance(i, str) and i]
        if len(ids) != 1:
            raise EmbeddingServerError(
                f"the embedding server at {self.url} serves "
                f"{', '.join(ids) if ids else 'no models'}; set RAG_EMBEDDING_SERVER_MODEL "
                "to the one to use"
            )
        return ids[0]

    @cached_property
    def dim(self) -> int:
        return int(self._embed(["dimension probe"]).shape[1])

    @cached_property
    def fingerprint(self) -> str:
        """Identity of the vectors: the served model, the prompts and the dimension."""
        ident = f"server:{self.served_model}|{self.query_prompt}|{self.document_prompt}|{self.dim}"
        return hashlib.sha256(ident.encode()).hexdigest()[:16]

    def embed_documents(
        self, texts: Sequence[str], titles: Sequence[str] | None = None, progress: bool = False
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._embed(document_inputs(self.document_prompt, texts, titles))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed([self.query_prompt + t for t in texts])

    def _embed(self, inputs: list[str]) -> np.ndarray:
        size = self.settings.embedding_request_size
        parts = [self._embed_batch(inputs[i : i + size]) for i in range(0, len(inputs), size)]
        vectors = np.vstack(parts)
        if "dim" in self.__dict__ and vectors.shape[1] != self.dim:
            raise EmbeddingServerError(
                f"the embedding server at {self.url} changed its dimension from {self.dim} "
                f"to {vectors.shape[1]} (another model?)"
            )
        return vectors

    def _embed_batch(self, inputs: list[str]) -> np.ndarray:
        body = {"model": self.served_model, "input": inputs, "encoding_format": "float"}
        answer = self._request("POST", "/embeddings", body)
        return _vectors(answer, len(inputs), self.url)

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        """One call, retried on transient failures until ``embedding_retry_seconds`` pass."""
        deadline = time.monotonic() + self.settings.embedding_retry_seconds
        delay, attempts = FIRST_DELAY, 0
        while True:
            attempts += 1
            try:
                return self._call(method, path, body)
            except _Transient as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise EmbeddingServerError(
                        f"the embedding server at {self.url} {exc} (tried {attempts} times "
                        f"over {self.settings.embedding_retry_seconds:g} s, "
                        "RAG_EMBEDDING_RETRY_SECONDS); is it running?"
                    ) from None
                log.info("embedding server: %s; retrying in %.2f s", exc, min(delay, left))
                self._sleep(min(delay, left))
                delay = min(delay * 2, MAX_DELAY)

    def _call(self, method: str, path: str, body: dict | None) -> dict:
        where = f"the embedding server at {self.url}"
        try:
            with httpx.Client(timeout=self.timeout, headers=self._headers) as client:
                response = client.request(method, self.url + path, json=body)
        except httpx.ConnectError as exc:
            raise _Transient(f"refused the connection ({exc})") from exc
        except httpx.TimeoutException:
            raise _Transient(
                f"did not answer within {self.settings.embedding_timeout:g} s "
                "(RAG_EMBEDDING_TIMEOUT)"
            ) from None
        except httpx.HTTPError as exc:
            raise _Transient(f"broke the connection ({exc})") from exc
        if response.status_code in RETRY_STATUS:
            raise _Transient(f"answered HTTP {response.status_code}: {_error_text(response.text)}")
        if response.status_code >= 400:
            bad_name = response.status_code in (400, 404)
            hint = " (check RAG_EMBEDDING_SERVER_MODEL)" if bad_name else ""
            raise EmbeddingServerError(
                f"{where} answered HTTP {response.status_code} to {path}: "
                f"{_error_text(response.text)}{hint}"
            )
        try:
            answer = response.json()
        except ValueError:
            raise EmbeddingServerError(
                f"{where} sent something that is not JSON: {response.text[:200]!r}"
            ) from None
        if not isinstance(answer, dict):
            raise EmbeddingServerError(f"{where} sent an unexpected answer: {str(answer)[:200]}")
        return answer


def _stored_prompts(folder: Path) -> dict:
    """The prompts sentence-transformers keeps in a model folder's config, if any."""
    try:
        config = json.loads((folder / "config_sentence_transformers.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    prompts = config.get("prompts") if isinstance(config, dict) else None
    return prompts if isinstance(prompts, dict) else {}


def _vectors(answer: dict, count: int, url: str) -> np.ndarray:
    """The answer's embeddings in input order, L2-normalised; anything odd is an error."""
    where = f"the embedding server at {url}"
    data = answer.get("data")
    if not isinstance(data, list) or len(data) != count:
        got = len(data) if isinstance(data, list) else "no"
        raise EmbeddingServerError(f"{where} returned {got} embeddings for {count} inputs")
    try:
        ordered = sorted(data, key=lambda item: item.get("index", 0))
        vectors = np.asarray([item["embedding"] for item in ordered], dtype=np.float32)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise EmbeddingServerError(f"{where} returned unreadable embeddings ({exc})") from None
    if vectors.ndim != 2 or vectors.shape[1] == 0:
        raise EmbeddingServerError(f"{where} returned embeddings of uneven or zero length")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise EmbeddingServerError(f"{where} returned zero or non-finite embeddings")
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def load_embedder(settings: Settings):
    """The configured embedder: the server client with ``embedding_url``, else in-process."""
    if settings.embedding_url:
        return RemoteEmbedder(settings)
    from .embeddings import Embedder

    return Embedder(settings)
