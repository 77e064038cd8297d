"""LLM failures reach the user as errors: a remote server that is down, answers an HTTP
error, streams an error event, cuts the stream or stays silent, and a local model file
that is deleted or overwritten while in use. Never an empty answer turned into a refusal
or an extractive fallback. Also: an abandoned answer frees the local LLM at once."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from rag.engine import Engine
from rag.llm import LlamaCppLLM, LLMError, OpenAICompatibleLLM, load_llm
from rag.models import MODELS
from tests import fault_llm

QUESTION = "Сколько терактов предотвращено с 2014 года?"
HELLO = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def fault_url():
    server, url = fault_llm.start()
    yield url
    server.shutdown()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there any more


def _remote(built_engine, url: str, **overrides) -> Engine:
    engine = Engine(built_engine.settings.replace(llm_url=url, llm_model="fault", **overrides))
    engine.__dict__["embedder"] = built_engine.embedder
    return engine


ERRORS = {
    "http500": "HTTP 500: CUDA out of memory",
    "model404": "HTTP 404: model 'nope' not found",
    "error_event": "reported an error: context shift failed",
    "cut": "ended the answer stream before it was complete",
}


def test_a_healthy_stream_is_read_whole(fault_url, built_engine):
    llm = OpenAICompatibleLLM(built_engine.settings.replace(llm_url=f"{fault_url}/ok/v1"))
    assert "".join(llm.stream(HELLO, 16, 0.0)) == fault_llm.ANSWER


@pytest.mark.parametrize("mode", sorted(ERRORS))
def test_remote_errors_raise_a_clear_llm_error(fault_url, built_engine, mode):
    llm = OpenAICompatibleLLM(built_engine.settings.replace(llm_url=f"{fault_url}/{mode}/v1"))
    with pytest.raises(LLMError, match=ERRORS[mode]):
        "".join(llm.stream(HELLO, 16, 0.0))


def test_server_down_and_timeout_raise_a_clear_llm_error(fault_url, built_engine):
    down = OpenAICompatibleLLM(built_engine.settings.replace(llm_url=_closed_port_url()))
    with pytest.raises(LLMError, match=r"did not answer \(is it running"):
        "".join(down.stream(HELLO, 16, 0.0))
    settings = built_engine.settings.replace(llm_url=f"{fault_url}/slow/v1", llm_timeout=0.5)
    started = time.perf_counter()
    with pytest.raises(LLMError, match=r"did not answer within 0\.5 s"):
        "".join(OpenAICompatibleLLM(settings).stream(HELLO, 16, 0.0))
    assert time.perf_counter() - started < fault_llm.SLOW_SECONDS


def test_an_error_mid_answer_ends_the_event_stream_with_the_error(fault_url, built_engine):
    engine = _remote(built_engine, f"{fault_url}/error_event/v1")
    seen = []
    with pytest.raises(LLMError, match="context shift failed"):
        for event in engine.ask(QUESTION):
            seen.append(event["type"])
    assert "evidence" in seen and "token" in seen  # the passages showed, then the error
    assert "done" not in seen  # no refusal, no extractive fallback


def _ask_cli(built_engine, url: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        RAG_CORPUS_DIR=str(built_engine.settings.corpus_dir),
        RAG_INDEX_DIR=str(built_engine.settings.index_dir),
        RAG_LLM_URL=url,
        RAG_LLM_TIMEOUT="0.5",
    )
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", "ask", QUESTION],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_rag_ask_exits_non_zero_with_the_message(fault_url, built_engine):
    for url, message in [
        (f"{fault_url}/http500/v1", "HTTP 500: CUDA out of memory"),
        (f"{fault_url}/slow/v1", "did not answer within 0.5 s"),
    ]:
        done = _ask_cli(built_engine, url)
        assert done.returncode == 1, done.stderr
        assert f"error: the LLM server at {url}" in done.stderr and message in done.stderr
        assert "Traceback" not in done.stderr
        assert "В найденных статьях нет" not in done.stdout  # not a refusal


def test_the_ui_shows_the_error_of_a_failing_server(fault_url, built_engine, tmp_path):
    from gradio_client import Client

    from tests.test_ui import _start

    proc, url = _start(tmp_path, built_engine, RAG_LLM_URL=f"{fault_url}/error_event/v1")
    try:
        outputs = Client(url, verbose=False).predict(QUESTION, [], api_name="/ask")
        reply = str(outputs[0][-1])
        assert "⚠️ Ошибка" in reply and "context shift failed" in reply
        assert "В найденных статьях нет" not in reply  # not a refusal
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def model_copy(tiny_settings, tmp_path):
    source = MODELS["smollm2-135m-instruct"].target(tiny_settings.models_dir)
    path = tmp_path / "model.gguf"
    shutil.copy(source, path)
    return tiny_settings.replace(llm_model=str(path)), path, source


def test_model_file_deleted_or_replaced_while_loaded(model_copy):
    settings, path, source = model_copy
    llm = load_llm(settings)
    assert isinstance(llm, LlamaCppLLM)
    path.unlink()  # the mapped copy stays valid: keeps answering
    assert "".join(llm.stream(HELLO, 4, 0.0))
    with pytest.raises(LLMError, match="does not exist"):
        load_llm(settings)  # a reload says which file is missing
    shutil.copy(source, path.with_suffix(".new"))
    os.replace(path.with_suffix(".new"), path)  # a new file renamed over it: harmless
    assert "".join(llm.stream(HELLO, 4, 0.0))


def test_model_file_overwritten_in_place_is_refused_not_crashed(model_copy):
    settings, path, _ = model_copy
    llm = load_llm(settings)
    with path.open("r+b") as fh:  # rewrite in place (same bytes: the mapping stays sane)
        head = fh.read(4096)
        fh.seek(0)
        fh.write(head)
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    with pytest.raises(LLMError, match=r"overwritten while in use; restart"):
        "".join(llm.stream(HELLO, 4, 0.0))


def test_an_abandoned_answer_frees_the_llm_at_once(built_engine, tiny_settings):
    """Stop or a closed tab closes the answer generator (Gradio does): llama.cpp generates
    no further token for it and the next answer gets the model at once."""
    engine = Engine(
        built_engine.settings.replace(
            llm_model=tiny_settings.llm_model, llm_context=2048, llm_max_tokens=300
        )
    )
    engine.__dict__["embedder"] = built_engine.embedder
    llm = engine.llm
    long = [{"role": "user", "content": "Write a long story about a cat, 300 words."}]
    stream = llm.stream(long, 300, 0.0)
    for _ in range(3):
        next(stream)
    evaluated = llm.llama.n_tokens
    stream.close()
    assert llm.llama.n_tokens == evaluated  # not one token more for the abandoned answer
    assert llm._lock.acquire(blocking=False)  # free at once, not after 300 tokens
    llm._lock.release()

    events = engine.ask(QUESTION)  # the same through the answer's event stream
    tokens = 0
    for event in events:
        tokens += event["type"] == "token"
        if tokens == 3:
            break
    evaluated = llm.llama.n_tokens
    events.close()
    assert llm.llama.n_tokens == evaluated
    assert llm._lock.acquire(blocking=False)
    llm._lock.release()
    assert next(iter(llm.stream(HELLO, 4, 0.0)))  # the next user starts right away
