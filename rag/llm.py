"""LLM backends: a local GGUF through llama-cpp-python, or any OpenAI-compatible server.

Both stream text pieces from chat messages and count tokens, which is all the
answer stage needs. The local backend keeps the evaluated KV state of the fixed
prompt prefix (system text and examples) and restores it before each answer, so
only the passages and the question are evaluated per question.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from .settings import Settings


class LLMError(RuntimeError):
    """The model could not be loaded or did not answer; the message says why."""


def resolve_llm_path(settings: Settings) -> Path | None:
    from .models import MODELS

    name = settings.llm_model.strip()
    if not name:
        return None
    spec = MODELS.get(name)
    if spec is not None:
        path = spec.target(settings.models_dir)
        if not spec.is_installed(settings.models_dir):
            raise LLMError(
                f"LLM {name!r} is not provisioned in {settings.models_dir}; run `rag models`"
            )
        return path
    path = Path(name).expanduser()
    if not path.is_file():
        raise LLMError(f"LLM file {path} does not exist; set RAG_LLM_MODEL to a GGUF file")
    return path


def _check_gguf(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise LLMError(f"cannot read the LLM file {path}: {exc}") from exc
    if magic != b"GGUF":
        raise LLMError(f"{path} is not a GGUF model file (it starts with {magic!r})")


class LlamaCppLLM:
    def __init__(self, settings: Settings, path: Path):
        _check_gguf(path)
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        threads = settings.llm_threads or os.cpu_count() or 2
        try:
            self.llama = Llama(
                model_path=str(path),
                n_ctx=settings.llm_context,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=512,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:  # llama.cpp says "Failed to load model"
            raise LLMError(
                f"cannot load the LLM {path} ({exc}); the file may be truncated or damaged"
            ) from exc
        self.name = path.name
        self.context_size = self.llama.n_ctx()
        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise LLMError(f"{path} has no chat template in its metadata")
        vocab = self.llama
        eos = vocab.detokenize([vocab.token_eos()]).decode("utf-8", "ignore")
        bos = vocab.detokenize([vocab.token_bos()]).decode("utf-8", "ignore")
        self._format = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self.reuse_prefix = settings.llm_reuse_prefix
        self._lock = threading.Lock()  # one generation at a time on one context
        self._prefix: list[int] = []
        self._prefix_state = None

    def render(self, messages: list[dict]) -> list[int]:
        prompt = self._format(messages=messages).prompt
        return self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def prompt_tokens(self, messages: list[dict]) -> int:
        """Exact size of the rendered chat prompt."""
        return len(self.render(messages))

    def warm_prefix(self, fixed: list[dict]) -> int:
        """Evaluate the fixed part of every answer prompt once and keep its KV state."""
        if not self.reuse_prefix:
            return 0
        probe_a = self.render([*fixed, {"role": "user", "content": "а"}])
        probe_b = self.render([*fixed, {"role": "user", "content": "б"}])
        prefix = []
        for x, y in zip(probe_a, probe_b, strict=False):
            if x != y:
                break
            prefix.append(x)
        with self._lock:
            self.llama.reset()
            self.llama.eval(prefix)
            self._prefix_state = self.llama.save_state()
            self._prefix = prefix
        return len(prefix)

    def stream(self, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        tokens = self.render(messages)
        if len(tokens) + max_tokens > self.context_size:
            raise LLMError(
                f"prompt of {len(tokens)} tokens does not fit the context ({self.context_size})"
            )
        with self._lock:
            if not self.reuse_prefix:
                self.llama.reset()  # baseline: evaluate the whole prompt every time
            cached = list(self.llama._input_ids[: len(self._prefix)])
            if (
                self._prefix
                and tokens[: len(self._prefix)] == self._prefix
                and cached != self._prefix
            ):
                self.llama.load_state(self._prefix_state)
            pieces = self.llama.create_completion(
                tokens,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=0.9,
                repeat_penalty=1.05,
                stream=True,
                stop=["<|im_end|>", "<|endoftext|>"],
            )
            for piece in pieces:
                text = piece["choices"][0]["text"]
                if text:
                    yield text


class OpenAICompatibleLLM:
    """Streams from ``{url}/chat/completions`` (llama.cpp server, vLLM, …)."""

    def __init__(self, settings: Settings):
        self.url = settings.llm_url.rstrip("/")
        self.model = settings.llm_model or "default"
        self.name = f"{self.model} @ {self.url}"
        self.context_size = settings.llm_context
        self.timeout = 300

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 3)  # conservative estimate; the server counts exactly

    def prompt_tokens(self, messages: list[dict]) -> int:
        return sum(self.count_tokens(m["content"]) + 4 for m in messages)

    def warm_prefix(self, fixed: list[dict]) -> int:
        return 0  # the server keeps its own prompt cache

    def stream(self, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        body = json.dumps(
            {
                "model": self.model,
                "messages": messages,
                "max_tokens": max_tokens,
                "temperature": temperature,
                "stream": True,
            }
        ).encode()
        request = urllib.request.Request(
            f"{self.url}/chat/completions",
            data=body,
            headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
        )
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except (urllib.error.URLError, OSError) as exc:
            raise LLMError(f"the LLM server at {self.url} did not answer: {exc}") from exc
        with response:
            for raw in response:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    delta = json.loads(data)["choices"][0].get("delta", {})
                except (ValueError, KeyError, IndexError):
                    continue
                if delta.get("content"):
                    yield delta["content"]


def load_llm(settings: Settings):
    """The configured backend, or None when no LLM is configured."""
    if settings.llm_url:
        return OpenAICompatibleLLM(settings)
    path = resolve_llm_path(settings)
    return LlamaCppLLM(settings, path) if path else None
