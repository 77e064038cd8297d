"""Load test of the web UI: N simulated users through gradio_client, latency, queue wait, memory.

    .venv/bin/python bench/load.py                                # own server, 4 users, 10 min
    .venv/bin/python bench/load.py --users 8 --duration 120 --mix answer
    .venv/bin/python bench/load.py --llm --users 2 --duration 300 # with the default LLM (slow)
    .venv/bin/python bench/load.py --llm --users 8 --duration 1800  # the LLM soak
    .venv/bin/python bench/load.py --llm-model smollm2-135m-instruct --duration 60  # tiny LLM
    .venv/bin/python bench/load.py --url http://127.0.0.1:7860/   # a server already running
    .venv/bin/python bench/load.py --duration 60 --json load.json # the figures as JSON too

By default it starts its own ``ui.py`` the way tests/test_ui.py does (copies of ./corpus and
./index in a temporary directory, a free port) with ``RAG_LLM_MODEL=""``, so answers are
extractive and fast; ``--llm`` keeps the configured LLM. Each user is a thread with its own
``gradio_client.Client`` (its own session) that loops until ``--duration`` or
``--max-requests``: a passage search (``/run_search``) or a question (``/ask``); a question is
sometimes followed by a follow-up that sends the returned chat (the server keeps the
conversation in the session's state), and a new conversation first clears the old one the way
the "clear" button does. Requests in flight at the deadline are waited for (``--timeout``).

Queue wait is the time from ``client.submit()`` until the server's ``process_starts`` message
(the Job's status turns PROCESSING); gradio_client stamps status messages when its worker
reads them, every 50 ms. The server's RSS (with its children) is sampled every few seconds;
the slope over the second half of the run is the leak indicator. Answers to questions with
keys (``any`` in the questions file) are scored as ``rag eval`` scores them, overall and by
third of the run; each answer also records the largest place in the app's line for the LLM
that its chat showed ("⏳ … 2-й в очереди"), beside Gradio's own queue position.
Exit status 1 if any request failed or the server died.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import psutil

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client
from gradio_client import __version__ as gradio_client_version
from gradio_client.utils import Status, StatusUpdate

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from rag.evaluate import answer_correct  # noqa: E402
from rag.processes import (  # noqa: E402
    http_ok,
    log_tail,
    start_app,
    stop_server,
)

KINDS = ("search", "answer", "followup", "clear")
# Used when the questions file has no follow-up questions (kind "followup").
GENERIC_FOLLOWUPS = [
    "А что ещё известно об этом?",
    "Кто об этом сообщил?",
    "Когда это произошло?",
]
ERRORS_KEPT = 5


# --------------------------------------------------------------------------- the server


def start_server(
    tmp: Path, llm: bool, timeout: float = 300, llm_model: str | None = None
) -> tuple[subprocess.Popen, str]:
    """``python ui.py`` on copies of ./corpus and ./index, like tests/test_ui.py (without
    an index in ./index, one is built for the copy of the corpus first)."""
    corpus, index = tmp / "corpus", tmp / "index"
    shutil.copytree(PROJECT_ROOT / "corpus", corpus)
    if (PROJECT_ROOT / "index" / "CURRENT").is_file():
        shutil.copytree(PROJECT_ROOT / "index", index)
    else:
        rag = Path(sys.executable).with_name("rag")
        env = dict(os.environ, RAG_CORPUS_DIR=str(corpus), RAG_INDEX_DIR=str(index))
        subprocess.run([str(rag), "index"], env=env, check=True, stdout=subprocess.DEVNULL)
    extra = {} if llm else {"RAG_LLM_MODEL": "", "RAG_LLM_URL": ""}
    if llm_model:
        extra = {"RAG_LLM_MODEL": llm_model, "RAG_LLM_URL": ""}
    return start_app(corpus, index, tmp / "server.log", timeout=timeout, **extra)


def find_listener(url: str) -> int | None:
    """The pid listening on the URL's port, if it is on this machine and visible to us."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "0.0.0.0", "::1"):
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        conns = []
        for proc in psutil.process_iter():
            try:
                conns += [c._replace(pid=proc.pid) for c in proc.net_connections(kind="tcp")]
            except (psutil.AccessDenied, psutil.NoSuchProcess):
                continue
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            return c.pid
    return None


class MemorySampler(threading.Thread):
    """RSS of the server process and its children every ``every`` seconds."""

    def __init__(self, pid: int, every: float, died: threading.Event):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.every = every
        self.died = died
        self.samples: list[tuple[float, float]] = []  # (seconds since t0, MB)
        self.t0 = time.monotonic()
        self._halt = threading.Event()

    def rss_mb(self) -> float | None:
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
            if self.proc.status() == psutil.STATUS_ZOMBIE:
                raise psutil.NoSuchProcess(self.proc.pid)
        except psutil.NoSuchProcess:
            self.died.set()
            return None
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total / 2**20

    def sample(self) -> None:
        mb = self.rss_mb()
        if mb is not None:
            self.samples.append((time.monotonic() - self.t0, mb))

    def run(self) -> None:
        while not self._halt.wait(self.every):
            self.sample()

    def finish(self) -> None:
        self._halt.set()
        self.join()
        self.sample()


def memory_summary(samples: list[tuple[float, float]]) -> dict:
    if not samples:
        return {"samples": 0}
    t = np.array([s[0] for s in samples])
    mb = np.array([s[1] for s in samples])
    half = t >= t[-1] / 2
    slope = None
    if half.sum() >= 3 and np.ptp(t[half]) > 0:
        slope = float(np.polyfit(t[half] / 60, mb[half], 1)[0])
    return {
        "samples": len(samples),
        "start_mb": float(mb[0]),
        "max_mb": float(mb.max()),
        "end_mb": float(mb[-1]),
        "second_half_slope_mb_per_min": slope,
        "second_half_samples": int(half.sum()),
        "second_half_s": float(np.ptp(t[half])) if half.any() else 0.0,
        "series_s_mb": [[round(float(a), 1), round(float(b), 1)] for a, b in samples],
    }


# --------------------------------------------------------------------------- the users


@dataclass
class Record:
    kind: str
    ok: bool
    latency: float  # seconds, submit to result
    join: float | None = None  # submit to the first IN_QUEUE (joining the queue, opening SSE)
    queue_wait: float | None = None  # first IN_QUEUE to PROCESSING: waiting in Gradio's queue
    run: float | None = None  # PROCESSING to FINISHED: the handler, streaming included
    queue_position: int | None = None  # largest rank reported while waiting (1 = next)
    error: str = ""
    started: float = 0.0  # seconds since the run started, at submit
    llm_place: int | None = None  # largest place in the app's line for the LLM (1 = next)
    correct: bool | None = None  # an answer scored against its question's key, if it has one


@dataclass
class Shared:
    deadline: float
    max_requests: int
    stop: threading.Event
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    issued: int = 0
    records: list[Record] = field(default_factory=list)

    def reserve(self) -> bool:
        with self.lock:
            if self.stop.is_set() or time.monotonic() >= self.deadline:
                return False
            if self.issued >= self.max_requests:
                return False
            self.issued += 1
            return True

    def add(self, record: Record) -> None:
        with self.lock:
            self.records.append(record)


@dataclass
class Endpoints:
    ask: str
    search: str | None
    clear: str | None  # None: a new conversation gets a new session instead


def discover(client: Client, search_api: str | None) -> Endpoints:
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    if "/ask" not in named:
        raise SystemExit(f"error: the server has no /ask endpoint (has {', '.join(named)})")
    if search_api is None:
        found = [n for n in named if "search" in n]
        search_api = "/run_search" if "/run_search" in found else (found or [None])[0]
    elif search_api not in named:
        raise SystemExit(f"error: no endpoint {search_api} (has {', '.join(named)})")
    clear = None
    for name, info in named.items():  # the "clear" button: no inputs, resets the Chatbot
        comps = [r.get("component") for r in info.get("returns", [])]
        if name.startswith("/lambda") and not info.get("parameters") and "Chatbot" in comps:
            clear = name
            break
    return Endpoints("/ask", search_api, clear)


def message_text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return str(content)


def check_answer(result, sent: list) -> str:
    """'' if the /ask result looks like an answer, else what is wrong with it."""
    if not isinstance(result, (tuple, list)) or not result or not isinstance(result[0], list):
        return f"unexpected /ask result: {str(result)[:200]}"
    chat = result[0]
    if len(chat) != len(sent) + 2:
        return f"chat has {len(chat)} messages after sending {len(sent)}"
    text = message_text(chat[-1]).strip()
    if not text:
        return "empty answer"
    if text.startswith("⚠️ Ошибка"):  # the app caught an exception and showed it in the chat
        return text[:300]
    if text.startswith(("🔎", "✍️")):  # a progress placeholder: the stream stopped early
        return f"unfinished answer: {text[:100]}"
    return ""


def check_search(result) -> str:
    if not isinstance(result, str):
        return f"unexpected search result: {str(result)[:200]}"
    if "⚠️" in result[:40]:
        return result[:300]
    if "class='passage'" not in result and "Ничего не найдено" not in result:
        return f"no passages: {result[:200]}"
    return ""


def call(client: Client, api: str, args: tuple, timeout: float) -> tuple[object, dict, str]:
    """Submit and wait: (result, timings, error text or ''); the queue figures come from
    the Job's status messages."""
    submitted = time.time()
    result, error = None, ""
    job = None
    try:
        job = client.submit(*args, api_name=api)
        result = job.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        job.cancel()
        error = f"no result after {timeout:.0f} s"
    except Exception as exc:
        error = (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:300]
    meta = {"latency": time.time() - submitted}
    if job is not None:
        meta.update(queue_figures(job, submitted))
        if api == "/ask":
            meta["llm_place"] = llm_place(job)
    return result, meta, error


def queue_figures(job, submitted: float) -> dict:
    """Phases of one request from the Job's status messages (StatusUpdate.time is when the
    client's worker read the message from the SSE stream: it polls every 50 ms)."""
    comm = getattr(job, "communicator", None)
    if comm is None:
        return {}
    seen: dict[Status, float] = {}
    ranks = []
    while True:
        try:
            update = comm.updates.get_nowait()
        except asyncio.QueueEmpty:  # an asyncio.Queue, filled by the client's worker thread
            break
        if not isinstance(update, StatusUpdate) or update.time is None:
            continue
        seen.setdefault(update.code, update.time.timestamp())
        if update.code == Status.IN_QUEUE and update.rank is not None:
            ranks.append(update.rank + 1)
    out: dict = {}
    queued, started = seen.get(Status.IN_QUEUE), seen.get(Status.PROCESSING)
    finished = seen.get(Status.FINISHED)
    if queued is not None:
        out["join"] = max(0.0, queued - submitted)
    if started is not None:
        # without an estimation message the whole time before PROCESSING counts as waiting
        out["queue_wait"] = max(0.0, started - (queued if queued is not None else submitted))
        if finished is not None:
            out["run"] = max(0.0, finished - started)
    if ranks:
        out["queue_position"] = max(ranks)
    return out


def llm_place(job) -> int | None:
    """The largest place in the app's line for the LLM that the chat showed ("⏳ … 2-й")."""
    places = []
    try:
        outputs = job.outputs()
    except Exception:
        return None
    for out in outputs:
        chat = out[0] if isinstance(out, (tuple, list)) and out else None
        if isinstance(chat, list) and chat and isinstance(chat[-1], dict):
            text = message_text(chat[-1])
            if text.startswith("⏳"):
                found = re.search(r"\d+", text)
                places.append(int(found.group()) if found else 1)
    return max(places) if places else None


def user(
    n: int,
    url: str,
    shared: Shared,
    eps: Endpoints,
    questions: list[str],
    followups: list[str],
    args: argparse.Namespace,
    keys: dict[str, list[str]] | None = None,
) -> None:
    rng = random.Random(args.seed * 1000 + n)
    client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    chat: list = []  # the conversation this session's server state holds
    turns = 0
    try:
        while True:
            if args.mix == "search" or (args.mix == "both" and rng.random() < 0.5):
                kind = "search"
            elif chat and turns <= args.max_followups and rng.random() < args.followup:
                kind = "followup"
            elif chat:
                kind = "clear"
            else:
                kind = "answer"
            if kind == "search" and eps.search is None:
                kind = "answer" if not chat else "followup"
            if kind == "clear" and eps.clear is None:
                client.reset_session()  # a fresh session is a fresh conversation too
                chat, turns, kind = [], 0, "answer"
            if not shared.reserve():
                break
            if kind == "search":
                api, call_args = eps.search, (rng.choice(questions),)
            elif kind == "clear":
                api, call_args = eps.clear, ()
            elif kind == "followup":
                api, call_args = eps.ask, (rng.choice(followups), chat)
            else:
                api, call_args = eps.ask, (rng.choice(questions), [])
            at = time.monotonic() - shared.started
            result, meta, problem = call(client, api, call_args, args.timeout)
            if problem:
                pass
            elif kind == "search":
                problem = check_search(result)
            elif kind == "clear":
                ok = isinstance(result, (tuple, list)) and result and result[0] == []
                problem = "" if ok else f"clear did not empty the chat: {str(result)[:200]}"
            else:
                problem = check_answer(result, call_args[1])
            correct = None
            if kind == "answer" and not problem and keys and call_args[0] in keys:
                text = re.sub(r"<[^>]+>", " ", message_text(result[0][-1]))  # no link markup
                correct = answer_correct(text, keys[call_args[0]])
            if kind == "clear" and not problem:
                chat, turns = [], 0
            elif kind in ("answer", "followup") and not problem:
                chat, turns = list(result[0]), turns + 1
            shared.add(
                Record(
                    kind=kind,
                    ok=not problem,
                    latency=meta["latency"],
                    join=meta.get("join"),
                    queue_wait=meta.get("queue_wait"),
                    run=meta.get("run"),
                    queue_position=meta.get("queue_position"),
                    error=problem,
                    started=at,
                    llm_place=meta.get("llm_place"),
                    correct=correct,
                )
            )
            if args.think:
                time.sleep(rng.uniform(0, args.think))
    finally:
        client.close()


# --------------------------------------------------------------------------- the report


def pct(values: list[float], q: float) -> float | None:
    values = [v for v in values if v == v]  # no NaN
    return float(np.percentile(values, q)) if values else None


def kind_stats(records: list[Record], elapsed: float) -> dict:
    ok = [r for r in records if r.ok]
    lat = [r.latency for r in ok]
    positions = [r.queue_position for r in records if r.queue_position is not None]
    out = {
        "requests": len(records),
        "errors": sum(not r.ok for r in records),
        "req_per_s": len(records) / elapsed if elapsed else None,
        "latency_p50_s": pct(lat, 50),
        "latency_p95_s": pct(lat, 95),
        "latency_max_s": max(lat) if lat else None,
    }
    for name in ("join", "queue_wait", "run"):
        values = [getattr(r, name) for r in ok if getattr(r, name) is not None]
        out[f"{name}_n"] = len(values)
        out[f"{name}_p50_s"] = pct(values, 50)
        out[f"{name}_p95_s"] = pct(values, 95)
        out[f"{name}_max_s"] = max(values) if values else None
    out["queue_position_max"] = max(positions) if positions else None
    places = [r.llm_place for r in records if r.llm_place is not None]
    out["llm_place_shown"] = len(places)
    out["llm_place_max"] = max(places) if places else None
    scored = [r for r in ok if r.correct is not None]
    out["scored"] = len(scored)
    out["accuracy"] = sum(r.correct for r in scored) / len(scored) if scored else None
    return out


def accuracy_by_part(records: list[Record], elapsed: float, parts: int = 3) -> list[dict]:
    """Accuracy of the scored answers in each part of the run: do answers stay right?"""
    out = []
    for i in range(parts):
        lo, hi = elapsed * i / parts, elapsed * (i + 1) / parts
        scored = [r for r in records if r.correct is not None and lo <= r.started < hi]
        right = sum(r.correct for r in scored)
        out.append({"from_s": lo, "to_s": hi, "scored": len(scored), "right": right})
    return out


def fmt(value, spec: str = ".2f", width: int = 7) -> str:
    if value is None:
        return f"{'–':>{width}}"
    return f"{value:>{width}{spec}}"


def render(report: dict) -> str:
    cfg, run, mem = report["config"], report["run"], report["memory"]
    m = report["machine"]
    out = [
        f"load test: {cfg['users']} users, {cfg['duration_s']:.0f} s, at most "
        f"{cfg['max_requests']} requests, mix {cfg['mix']}, "
        + (
            "answers as the server is configured"
            if cfg["llm"] is None
            else "LLM answers"
            if cfg["llm"]
            else 'extractive answers (RAG_LLM_MODEL="")'
        ),
        f"server: {report['server']['url']} ({report['server']['how']}, pid "
        f"{report['server']['pid'] or '?'}); endpoints ask {cfg['endpoints']['ask']}, search "
        f"{cfg['endpoints']['search']}, clear {cfg['endpoints']['clear'] or '(new session)'}",
        f"machine: {m['platform']}, {m['cpu_count']} CPUs, load average at start "
        f"{' / '.join(f'{x:.2f}' for x in m['loadavg_start'])}, at end "
        f"{' / '.join(f'{x:.2f}' for x in m['loadavg_end'])}; python {m['python']}, "
        f"gradio_client {m['gradio_client']}",
        "",
        f"requests: {run['requests']} in {run['elapsed_s']:.1f} s "
        f"(stopped by {run['stopped_by']}) = {run['req_per_s']:.2f} req/s; "
        f"errors: {run['errors']}",
        "",
        f"{'kind':<9}{'n':>6}{'err':>5}{'req/s':>7}   {'latency s: p50':>14}{'p95':>7}"
        f"{'max':>7}   {'join p50':>8}   {'queue wait s: p50':>17}{'p95':>7}{'max':>7}"
        f"{'pos':>5}   {'run p50':>7}{'p95':>7}",
    ]
    for kind, s in report["kinds"].items():
        out.append(
            f"{kind:<9}{s['requests']:>6}{s['errors']:>5}{fmt(s['req_per_s'])}   "
            f"{fmt(s['latency_p50_s'], width=14)}{fmt(s['latency_p95_s'])}"
            f"{fmt(s['latency_max_s'])}   {fmt(s['join_p50_s'], width=8)}   "
            f"{fmt(s['queue_wait_p50_s'], width=17)}{fmt(s['queue_wait_p95_s'])}"
            f"{fmt(s['queue_wait_max_s'])}{fmt(s['queue_position_max'], 'd', 5)}   "
            f"{fmt(s['run_p50_s'])}{fmt(s['run_p95_s'])}"
        )
    out += [
        "latency: client.submit() to its result (successful requests). From the Job's status",
        "messages (gradio_client stamps them when its worker reads the SSE stream, every 50 ms):",
        "join = submit to the first queue estimation (IN_QUEUE); queue wait = from there to",
        "process_starts (PROCESSING); pos = largest queue position reported (1 = next);",
        "run = PROCESSING to FINISHED (the handler and the streaming of its output).",
    ]
    answers = [(k, report["kinds"][k]) for k in ("answer", "followup") if k in report["kinds"]]
    for kind, st in answers:
        place = st["llm_place_max"]
        out.append(
            f"{kind}: {st['llm_place_shown']} of {st['requests']} showed a place in the line "
            f"for the LLM"
            + (f" (at most {place})" if place else "")
            + (
                f"; accuracy {st['accuracy']:.2f} over {st['scored']} scored against the keys"
                if st["scored"]
                else ""
            )
        )
    parts = [p for p in report["accuracy_by_part"] if p["scored"]]
    if parts:
        out.append(
            "accuracy by part of the run: "
            + ", ".join(
                f"{p['from_s'] / 60:.0f}–{p['to_s'] / 60:.0f} min {p['right']}/{p['scored']}"
                for p in parts
            )
        )
    if "clear" in report["kinds"]:
        out += [
            "clear is a no-op handler: its latency is the cost of a request itself",
            "(gradio_client opens a new HTTP connection for the POST and another for the SSE).",
        ]
    if report["queue_wait_measured"] is False:
        out.append(
            "queue wait was not reported by gradio_client; compare the answer and search "
            "latencies instead."
        )
    if report["error_messages"]:
        out.append("")
        out.append("first errors:")
        for e in report["error_messages"]:
            out.append(f"  {e['count']:>4} × {e['kind']}: {e['message']}")
    out.append("")
    if mem.get("samples"):
        slope = mem["second_half_slope_mb_per_min"]
        out.append(
            f"server RSS (with children, every {cfg['sample_every_s']:g} s, "
            f"{mem['samples']} samples): start {mem['start_mb']:.0f} MB, max "
            f"{mem['max_mb']:.0f} MB, end {mem['end_mb']:.0f} MB; second-half slope "
            + (
                f"{slope:+.2f} MB/min (linear fit over {mem['second_half_samples']} samples)"
                if slope is not None
                else "– (too few samples)"
            )
        )
        if slope is not None and mem["second_half_s"] < 120:
            out.append(
                f"  (the second half is only {mem['second_half_s']:.0f} s: the slope is noisy)"
            )
    else:
        out.append("server RSS: not measured (no local process found; give --pid)")
    out.append(f"server: {'DIED' if report['server']['died'] else 'alive at the end'}")
    return "\n".join(out)


def load_questions(path: Path) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """Questions, follow-ups, and the answer keys of the answerable questions."""
    questions, followups, keys = [], [], {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        q = item.get("q") if isinstance(item, dict) else None
        if not q:
            continue
        (followups if item.get("kind") == "followup" else questions).append(q)
        if item.get("any") and item.get("kind") != "followup":
            keys[q] = list(item["any"])
    if not questions:
        raise SystemExit(f"error: no questions (field 'q') in {path}")
    return questions, followups or GENERIC_FOLLOWUPS, keys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--pid", type=int, help="the --url server's pid, for its memory")
    parser.add_argument("--llm", action="store_true", help="own server keeps the default LLM")
    parser.add_argument("--llm-model", help="own server answers with this LLM (implies --llm)")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--duration", type=float, default=600, help="seconds (default 600)")
    parser.add_argument("--max-requests", type=int, default=2000)
    parser.add_argument("--mix", choices=["search", "answer", "both"], default="both")
    parser.add_argument("--questions", type=Path, default=PROJECT_ROOT / "tests/data/dev.jsonl")
    parser.add_argument("--followup", type=float, default=0.3, help="chance of a follow-up")
    parser.add_argument("--max-followups", type=int, default=2, help="per conversation")
    parser.add_argument("--think", type=float, default=0.0, help="max pause between requests")
    parser.add_argument("--timeout", type=float, default=600, help="per request, seconds")
    parser.add_argument("--sample-every", type=float, default=2.0, help="RSS period, seconds")
    parser.add_argument("--search-api", help="search endpoint (default: found by name)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here ('-': stdout)")
    args = parser.parse_args()
    if args.users < 1 or args.duration <= 0 or args.max_requests < 1:
        parser.error("--users, --duration and --max-requests must be positive")
    questions, followups, keys = load_questions(args.questions)

    tmp = None
    proc = None
    try:
        if args.url:
            url, how = args.url, "given by --url"
            pid = args.pid or find_listener(url)
            if not http_ok(url):
                raise SystemExit(f"error: {url} does not answer HTTP 200")
        else:
            tmp = Path(tempfile.mkdtemp(prefix="newsrag-load-"))
            print("starting the server (models load first) …", file=sys.stderr, flush=True)
            args.llm = args.llm or bool(args.llm_model)
            proc, url = start_server(tmp, args.llm, llm_model=args.llm_model)
            pid, how = proc.pid, "own ui.py"
        return run(args, url, how, pid, proc, tmp, questions, followups, keys)
    finally:
        if proc is not None:
            stop_server(proc)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args, url, how, pid, proc, tmp, questions, followups, keys) -> int:
    probe = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    eps = discover(probe, args.search_api)
    # warm-up, not counted: one search and one answer
    if eps.search:
        probe.predict(questions[0], api_name=eps.search)
    probe.predict(questions[0], [], api_name=eps.ask)
    probe.close()

    died = threading.Event()
    sampler = None
    if pid:
        try:
            sampler = MemorySampler(pid, args.sample_every, died)
        except psutil.NoSuchProcess:
            died.set()
    load_start = os.getloadavg()
    stop = threading.Event()
    started = time.monotonic()
    shared = Shared(deadline=started + args.duration, max_requests=args.max_requests, stop=stop)
    shared.started = started
    if sampler:
        sampler.t0 = started
        sampler.sample()
        sampler.start()
    failures: list[str] = []

    def guarded(n: int) -> None:
        try:
            user(n, url, shared, eps, questions, followups, args, keys)
        except Exception as exc:  # a user that could not even connect
            failures.append(f"user {n}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=guarded, args=(n,), daemon=True) for n in range(args.users)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        if proc is not None and proc.poll() is not None:
            died.set()
        if died.is_set():
            stop.set()
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    if sampler:
        sampler.finish()
    if proc is not None and proc.poll() is not None:
        died.set()
    if not died.is_set() and not http_ok(url):
        died.set()

    records = shared.records
    if died.is_set():
        stopped_by = "the server dying"
    elif shared.issued >= args.max_requests:
        stopped_by = "--max-requests"
    else:
        stopped_by = "--duration"
    errors: dict[tuple[str, str], int] = {}
    for r in records:
        if not r.ok:
            errors[(r.kind, r.error)] = errors.get((r.kind, r.error), 0) + 1
    for f in failures:
        errors[("user", f)] = 1
    kinds = {k: kind_stats([r for r in records if r.kind == k], elapsed) for k in KINDS}
    kinds = {k: v for k, v in kinds.items() if v["requests"]}
    kinds["all"] = kind_stats(records, elapsed)
    report = {
        "config": {
            "users": args.users,
            "duration_s": args.duration,
            "max_requests": args.max_requests,
            "mix": args.mix,
            "llm": bool(args.llm) if not args.url else None,
            "followup": args.followup,
            "think_s": args.think,
            "timeout_s": args.timeout,
            "sample_every_s": args.sample_every,
            "questions": str(args.questions),
            "seed": args.seed,
            "endpoints": asdict(eps),
        },
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "loadavg_start": list(load_start),
            "loadavg_end": list(os.getloadavg()),
            "python": platform.python_version(),
            "gradio_client": gradio_client_version,
        },
        "server": {"url": url, "how": how, "pid": pid, "died": died.is_set()},
        "run": {
            "requests": len(records),
            "errors": sum(not r.ok for r in records) + len(failures),
            "elapsed_s": elapsed,
            "req_per_s": len(records) / elapsed,
            "stopped_by": stopped_by,
        },
        "kinds": kinds,
        "queue_wait_measured": any(r.queue_wait is not None for r in records) if records else None,
        "error_messages": [
            {"kind": k, "message": msg, "count": c}
            for (k, msg), c in list(errors.items())[:ERRORS_KEPT]
        ],
        "memory": memory_summary(sampler.samples if sampler else []),
        "accuracy_by_part": accuracy_by_part(records, elapsed),
    }
    print(render(report))
    if died.is_set() and tmp is not None:
        print("\nserver log (end):\n" + log_tail(tmp / "server.log"), file=sys.stderr)
    if args.json:
        text = json.dumps(report, ensure_ascii=False, indent=2)
        if str(args.json) == "-":
            print(text)
        else:
            args.json.write_text(text + "\n", encoding="utf-8")
    return 1 if report["run"]["errors"] or died.is_set() or not records else 0


if __name__ == "__main__":
    sys.exit(main())
