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
from collections import deque
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import numpy as np

from .errors import RagError
from .settings import Settings


class LLMError(RagError, RuntimeError):
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


def _file_id(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_dev


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

        cores = os.cpu_count() or 2
        try:
            self.llama = Llama(
                model_path=str(path),
                n_ctx=settings.llm_context,
                n_threads=settings.llm_threads or cores,
                n_threads_batch=settings.llm_batch_threads or cores,
                n_batch=512,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:  # llama.cpp says "Failed to load model"
            raise LLMError(
                f"cannot load the LLM {path} ({exc}); the file may be truncated or damaged"
            ) from exc
        self.path = path
        self._file_id = _file_id(path)
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
        self._first: dict[tuple[str, ...], list[int]] = {}  # judge's words -> first tokens
        # fixed starts of prompts (the answers', the judge's), evaluated once: their tokens
        # and KV state, loaded when a prompt begins with one the context does not hold
        self._prefixes: list[tuple[list[int], object]] = []

    def _check_file(self) -> None:
        """llama.cpp maps the model file into memory. Deleting it or renaming another file
        over it is harmless (the mapped copy stays), but rewriting it in place changes the
        mapped pages under the model: reading them then crashes the process (SIGBUS) or
        gives garbage, so it is refused before generating."""
        try:
            now = _file_id(self.path)
        except FileNotFoundError:
            return  # deleted or being replaced: the mapped copy stays valid
        if now[0] == self._file_id[0] and now != self._file_id:
            raise LLMError(
                f"the LLM file {self.path} was overwritten while in use; restart to load it again"
            )

    def render(self, messages: list[dict]) -> list[int]:
        prompt = self._format(messages=messages).prompt
        return self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def prompt_tokens(self, messages: list[dict]) -> int:
        """Exact size of the rendered chat prompt."""
        return len(self.render(messages))

    def warm_prefix(self, fixed: list[dict]) -> int:
        """Evaluate the fixed start of a kind of prompt (``fixed``, then a user message)
        once and keep its KV state, so each prompt of that kind prefills only the rest."""
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
            self._prefixes.append((prefix, self.llama.save_state()))
        return len(prefix)

    def _resume(self, tokens: list[int]) -> None:
        """Before evaluating ``tokens`` (under the lock): the KV state of the fixed start
        they begin with, unless the context holds it already (llama.cpp then reuses the
        common start itself). Without prefix reuse, the whole prompt is evaluated."""
        if not self.reuse_prefix:
            self.llama.reset()  # baseline: evaluate the whole prompt every time
            return
        for prefix, state in self._prefixes:
            if tokens[: len(prefix)] == prefix:
                if list(self.llama._input_ids[: len(prefix)]) != prefix:
                    self.llama.load_state(state)
                return

    def stream(
        self,
        messages: list[dict],
        max_tokens: int,
        temperature: float,
        logprobs: list[float] | None = None,
    ) -> Iterator[str]:
        """The answer's text pieces; ``logprobs``, if given, receives the model's
        log-probability of each token it generates (the last, the stop token, excepted)."""
        tokens = self.render(messages)
        if len(tokens) + max_tokens > self.context_size:
            raise LLMError(
                f"prompt of {len(tokens)} tokens does not fit the context ({self.context_size})"
            )
        with self._lock:
            self._check_file()
            self._resume(tokens)
            pieces = self.llama.create_completion(
                tokens,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=0.9,
                repeat_penalty=1.05,
                stream=True,
                stop=["<|im_end|>", "<|endoftext|>"],
                logits_processor=None if logprobs is None else [TokenLogprobs(logprobs)],
            )
            # Tokens are generated only as they are asked for, so an abandoned answer
            # (Stop, a closed tab: the caller closes this generator) generates no more
            # and frees the lock at once; closing ``pieces`` ends llama.cpp's loop.
            with closing(pieces):
                for piece in pieces:
                    text = piece["choices"][0]["text"]
                    if text:
                        yield text

    def judge(self, messages: list[dict], yes: tuple[str, ...], no: tuple[str, ...]) -> float:
        """log P(yes) − log P(no) for the first token of the reply to ``messages``: each
        the total probability of the tokens that ``yes`` / ``no`` spellings begin with.
        One prefill, nothing generated (the token sampled after it is discarded)."""
        tokens = self.render(messages)
        if len(tokens) + 1 > self.context_size:
            raise LLMError(
                f"prompt of {len(tokens)} tokens does not fit the context ({self.context_size})"
            )
        first = {word: self._first_tokens(word) for word in (yes, no)}
        seen: list[float] = []

        def read(_ids, logits: np.ndarray) -> np.ndarray:
            log_p = _log_softmax(logits)
            seen.extend(float(np.logaddexp.reduce(log_p[first[w]])) for w in (yes, no))
            return logits

        with self._lock:
            self._check_file()
            self._resume(tokens)
            self.llama.create_completion(
                tokens, max_tokens=1, temperature=0.0, logits_processor=[read]
            )
        return seen[0] - seen[1]

    def _first_tokens(self, words: tuple[str, ...]) -> list[int]:
        """The tokens ``words`` begin with (tokenized once per model)."""
        if words not in self._first:
            ids = {self.llama.tokenize(w.encode("utf-8"), add_bos=False)[0] for w in words}
            self._first[words] = sorted(ids)
        return self._first[words]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities from one row of llama.cpp's logits (in float64: the vocabulary
    is large enough for float32 sums to lose the small ones)."""
    values = np.asarray(logits, dtype=np.float64)
    top = values.max()
    return values - (top + np.log(np.exp(values - top).sum()))


class TokenLogprobs:
    """Appends the log-probability of each generated token to ``into``, from the logits
    llama.cpp hands the sampler at each step (raw, before temperature and penalties).
    llama.cpp's own ``logprobs`` needs ``logits_all``, which keeps the logits of every
    prompt token (gigabytes at this vocabulary); this reads one row per token."""

    def __init__(self, into: list[float]):
        self.into = into
        self.previous: np.ndarray | None = None  # log-softmax of the previous step

    def __call__(self, input_ids, logits: np.ndarray) -> np.ndarray:
        if self.previous is not None:  # the token sampled last step is now the last input
            self.into.append(float(self.previous[int(input_ids[-1])]))
        self.previous = _log_softmax(logits)
        return logits


class OpenAICompatibleLLM:
    """Streams from ``{url}/chat/completions`` (llama.cpp server, vLLM, …) through httpx.

    Every way the server can fail (refused connection, HTTP error, an error event in the
    stream, a stream cut short, silence past the timeout) raises ``LLMError``: an empty
    answer would otherwise turn into a refusal that blames the articles."""

    def __init__(self, settings: Settings, connect_timeout: float = 10.0):
        self.url = settings.llm_url.rstrip("/")
        self.model = settings.llm_model or "default"
        self.name = f"{self.model} @ {self.url}"
        self.context_size = settings.llm_context
        # ``timeout`` bounds the wait for each piece of the stream, not the whole answer
        self.timeout = httpx.Timeout(settings.llm_timeout, connect=connect_timeout)

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 3)  # conservative estimate; the server counts exactly

    def prompt_tokens(self, messages: list[dict]) -> int:
        return sum(self.count_tokens(m["content"]) + 4 for m in messages)

    def warm_prefix(self, fixed: list[dict]) -> int:
        return 0  # the server keeps its own prompt cache

    def stream(self, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        with (
            self._errors(),
            httpx.Client(timeout=self.timeout) as client,
            client.stream(
                "POST",
                f"{self.url}/chat/completions",
                json=body,
                headers={"Accept": "text/event-stream"},
            ) as response,
        ):
            if response.status_code >= 400:
                detail = _error_text(response.read().decode("utf-8", "replace"))
                raise LLMError(f"{self.where} answered HTTP {response.status_code}: {detail}")
            yield from _sse_pieces(response.iter_lines(), self.where)

    def judge(self, messages: list[dict], yes: tuple[str, ...], no: tuple[str, ...]) -> float:
        """log P(yes) − log P(no) for the reply's first token, from the server's
        ``top_logprobs``; a word not among them counts as likely as the least likely
        listed. A server that gives no log-probabilities cannot judge: an error."""
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": 20,
        }
        with self._errors(), httpx.Client(timeout=self.timeout) as client:
            response = client.post(f"{self.url}/chat/completions", json=body)
            if response.status_code >= 400:
                detail = _error_text(response.text)
                raise LLMError(f"{self.where} answered HTTP {response.status_code}: {detail}")
            try:
                choice = response.json()["choices"][0]
                top = choice["logprobs"]["content"][0]["top_logprobs"]
                listed = [(str(t["token"]), float(t["logprob"])) for t in top]
            except (ValueError, KeyError, IndexError, TypeError):
                listed = []
        if not listed:
            raise LLMError(
                f"{self.where} gave no log-probabilities (top_logprobs), which the "
                "answer-or-refuse decision reads from the LLM; set RAG_LLM_JUDGE=false "
                "to decide without them"
            )
        floor = min(logprob for _, logprob in listed)
        return _listed_log_p(listed, yes, floor) - _listed_log_p(listed, no, floor)

    @property
    def where(self) -> str:
        return f"the LLM server at {self.url}"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Every way of not reaching the server, as an ``LLMError`` that says which."""
        where = self.where
        try:
            yield
        except httpx.ConnectError as exc:
            raise LLMError(f"{where} did not answer (is it running?): {exc}") from exc
        except httpx.TimeoutException as exc:
            raise LLMError(
                f"{where} did not answer within {self.timeout.read:g} s (RAG_LLM_TIMEOUT)"
            ) from exc
        except httpx.HTTPError as exc:
            raise LLMError(f"{where} is unreachable or broke the connection: {exc}") from exc


def _listed_log_p(listed: list[tuple[str, float]], words: tuple[str, ...], floor: float) -> float:
    """The log of the total probability of the listed tokens that begin one of ``words``
    (a token "д" or " да" begins "да"); ``floor`` when none does."""
    spellings = {w.strip().lower() for w in words}
    matching = [
        logprob
        for token, logprob in listed
        if (t := token.strip().lower()) and any(s.startswith(t) for s in spellings)
    ]
    return float(np.logaddexp.reduce(matching)) if matching else floor


def _error_text(payload: str) -> str:
    """The message of an OpenAI-style error body (``{"error": {"message": …}}``)."""
    try:
        data = json.loads(payload)
    except ValueError:
        return payload.strip()[:300] or "no details"
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error)[:300]


def _sse_pieces(lines: Iterator[str], where: str) -> Iterator[str]:
    """Text pieces of an OpenAI chat completion event stream; error events raise."""
    event = ""
    finished = False
    for raw in lines:
        line = raw.strip()
        if not line:
            event = ""
            continue
        if line.startswith("event:"):
            event = line[6:].strip()
            continue
        field, _, data = line.partition(":")
        data = data.strip()
        if field == "error" or event == "error":
            raise LLMError(f"{where} reported an error: {_error_text(data)}")
        if field != "data":
            continue
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise LLMError(f"{where} sent an unreadable event: {data[:200]!r}") from exc
        if isinstance(chunk, dict) and chunk.get("error"):
            raise LLMError(f"{where} reported an error: {_error_text(data)}")
        choices = chunk.get("choices") or [{}]
        choice = choices[0]
        content = (choice.get("delta") or {}).get("content")
        if content:
            yield content
        if choice.get("finish_reason"):
            finished = True
    if not finished:
        raise LLMError(f"{where} ended the answer stream before it was complete")


@dataclass(frozen=True)
class Waiting:
    """A place in the line for the LLM (1: next), while every slot is busy."""

    position: int


Returned = TypeVar("Returned")


def waited(steps: Generator[Waiting, None, Returned]) -> Returned:
    """The return value of a generator that only yields ``Waiting``: waiting silently."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


class SlotQueue:
    """The engine's one limit on answers generated at once, first come first served.

    A semaphore would let waiters in in any order and cannot tell a waiter its place; this
    keeps a line, so a user who waits is shown where they stand and is never overtaken."""

    def __init__(self, slots: int):
        self.slots = slots
        self._cond = threading.Condition()
        self._busy = 0
        self._line: deque[object] = deque()

    def join(self) -> object:
        ticket = object()
        with self._cond:
            self._line.append(ticket)
        return ticket

    def take(self, ticket: object, timeout: float) -> int:
        """0 once ``ticket`` holds a slot, else its place in line after ``timeout`` s."""
        with self._cond:
            ready = self._cond.wait_for(
                lambda: self._line[0] is ticket and self._busy < self.slots, timeout
            )
            if not ready:
                return self._line.index(ticket) + 1
            self._line.popleft()
            self._busy += 1
            self._cond.notify_all()  # with several slots the next in line may go too
            return 0

    def leave(self, ticket: object) -> None:
        """Give up a place in line (Stop or a closed tab while waiting)."""
        with self._cond:
            if ticket in self._line:
                self._line.remove(ticket)
                self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    @property
    def waiting(self) -> int:
        return len(self._line)


class SharedLLM:
    """A backend behind the engine's one limit on answers generated at once.

    The UI, the API and the CLI all stream through this, so together they never run
    more answers than the model can serve (the model server's slots, or one for the
    in-process model). A slot is taken at the first token asked for and given back when
    the stream ends or is closed (Stop, a closed tab), not when it is garbage-collected.
    Everything else is the backend's own."""

    def __init__(self, backend, slots: SlotQueue, every: float = 1.0):
        self.backend = backend
        self.slots = slots
        self.every = every  # how often a waiter is told its place

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    def _turn(self) -> Iterator[Waiting]:
        """``Waiting`` while others hold the slots, until this caller holds one (it must
        then ``release`` it); leaving the line on Stop or a closed tab."""
        ticket = self.slots.join()
        try:
            while place := self.slots.take(ticket, self.every):
                yield Waiting(place)
        except BaseException:
            self.slots.leave(ticket)
            raise

    def stream_in_turn(
        self, messages: list[dict], max_tokens: int, temperature: float
    ) -> Iterator[str | Waiting]:
        """The answer's text pieces, preceded by ``Waiting`` while others hold the slots."""
        yield from self._turn()
        try:
            pieces = self.backend.stream(messages, max_tokens, temperature)
            try:
                yield from pieces
            finally:
                close = getattr(pieces, "close", None)  # a plain iterator has none
                if close is not None:
                    close()
        finally:
            self.slots.release()

    def judge_in_turn(
        self, messages: list[dict], yes: tuple[str, ...], no: tuple[str, ...]
    ) -> Generator[Waiting, None, float]:
        """The backend's ``judge``, in line with the answers: ``Waiting`` events, then
        the judgement as the generator's return value."""
        yield from self._turn()
        try:
            return self.backend.judge(messages, yes, no)
        finally:
            self.slots.release()

    def judge(self, messages: list[dict], yes: tuple[str, ...], no: tuple[str, ...]) -> float:
        """The judgement only (waiting silently for a slot)."""
        return waited(self.judge_in_turn(messages, yes, no))

    def stream(self, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        """The text pieces only (waiting silently for a slot)."""
        pieces = self.stream_in_turn(messages, max_tokens, temperature)
        try:
            for piece in pieces:
                if not isinstance(piece, Waiting):
                    yield piece
        finally:
            pieces.close()


def load_llm(settings: Settings):
    """The configured backend, or None when no LLM is configured."""
    if settings.llm_url:
        return OpenAICompatibleLLM(settings)
    path = resolve_llm_path(settings)
    return LlamaCppLLM(settings, path) if path else None
