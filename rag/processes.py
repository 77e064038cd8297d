"""Starting and watching the app's server process: shared by the tests and the benchmarks,
so both start ``ui.py`` the same way and measure memory the same way."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .settings import PROJECT_ROOT


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports it in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def http_ok(url: str, timeout: float = 5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_app(
    corpus: Path, index: Path, log: Path, timeout: float = 240, **env_extra: str
) -> tuple[subprocess.Popen, str]:
    """``python ui.py`` on 127.0.0.1 and a free port over these folders; returns once the
    page answers, or raises with the end of the server's log."""
    port = free_port()
    env = dict(
        os.environ,
        RAG_CORPUS_DIR=str(corpus),
        RAG_INDEX_DIR=str(index),
        RAG_HOST="127.0.0.1",
        RAG_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
    )
    env.setdefault("MALLOC_ARENA_MAX", "2")  # as ./start.sh runs the app
    env.update(env_extra)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "ui.py")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited:\n" + log_tail(log))
        if http_ok(url, timeout=2):
            return proc, url
        time.sleep(1)
    stop_server(proc)
    raise RuntimeError("server did not start:\n" + log_tail(log))
