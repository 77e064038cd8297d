"""Thread budget: LLM answers and searches from 1, 2 and 4 users under thread settings.

    .venv/bin/python bench/threads.py                      # the whole matrix (~20 min)
    .venv/bin/python bench/threads.py --users 1,4 --duration 40 --configs 2x2,1x1
    .venv/bin/python bench/threads.py --json threads.json

The UI's process runs the embedding model (torch) and llama.cpp on the same cores. When
both want every core at once, llama.cpp's threads wait for each other at every layer and
generation collapses. This measures it the way the app runs: one process per setting (torch's
thread count is process-wide), one Engine, ``users`` threads that each ask a development
question with the LLM and then run ``--searches`` passage searches, in a loop, for
``--duration`` seconds after one warm-up answer; ``--searchers`` more users search without
pause meanwhile (the worst case for a shared process: the embedder always wants the cores);
``--busy`` other processes spin on a core each (another program keeping the machine busy).
Only one answer is generated at a time (the Engine's LLM line), so with several users the
others' searches and query embeddings run while an answer is being generated: the
contention a real server sees.

A setting is ``LxE`` (llama.cpp threads x torch threads; ``L/BxE``: L threads generate, B
read the prompt), optionally ``+passive``
(``OMP_WAIT_POLICY=PASSIVE``: OpenMP worker threads sleep instead of spinning between
parallel regions). Reported per setting and user count: time to first token (queue wait
included, as a user feels it), generation tokens/s, search latency and answers per minute.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

DEFAULT_CONFIGS = "2x2,1x1,2x1,1x2,2x2+passive,2x1+passive"
ANSWERABLE = ("fact", "multi", "crosslingual")


def parse_config(text: str) -> dict:
    """``LxE``, ``L/BxE`` (B prefill threads, else L) and ``+passive``."""
    core, _, flag = text.partition("+")
    llm, _, embed = core.partition("x")
    gen, _, batch = llm.partition("/")
    return {
        "name": text,
        "llm": int(gen),
        "batch": int(batch or gen),
        "embed": int(embed),
        "passive": flag == "passive",
    }


def questions() -> list[str]:
    rows = [json.loads(line) for line in (PROJECT_ROOT / "tests/data/dev.jsonl").open()]
    return [r["q"] for r in rows if r["kind"] in ANSWERABLE]


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


# --------------------------------------------------------------------------- one setting


def run_child(args: argparse.Namespace) -> dict:
    from rag.answer import answer
    from rag.engine import Engine
    from rag.settings import Settings

    settings = Settings.from_env(
        corpus_dir=Path(args.corpus),
        index_dir=Path(args.index),
        llm_threads=args.llm_threads,
        llm_batch_threads=args.llm_batch_threads,
        embedding_threads=args.embed_threads,
    )
    engine = Engine(settings)
    engine.retriever.index  # noqa: B018  (load everything before the clock starts)
    engine.embedder  # noqa: B018
    engine.llm  # noqa: B018
    pool = questions()
    answer(engine, pool[0])  # warm-up: first decode, caches
    deadline = time.monotonic() + args.duration
    records: list[dict] = []
    lock = threading.Lock()

    def user(n: int) -> None:
        rng = random.Random(n)
        while time.monotonic() < deadline:
            timings = answer(engine, rng.choice(pool))["timings"]
            with lock:
                records.append({"kind": "answer", **timings})
            for _ in range(args.searches):
                if time.monotonic() >= deadline:
                    break
                started = time.perf_counter()
                engine.search(rng.choice(pool))
                with lock:
                    records.append({"kind": "search", "s": time.perf_counter() - started})

    def searcher(n: int) -> None:  # searches without pause while answers are generated
        rng = random.Random(1000 + n)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            # a number makes every query new: no answer from the query-embedding cache
            engine.search(f"{rng.choice(pool)} {rng.randrange(10**6)}")
            with lock:
                records.append({"kind": "search", "s": time.perf_counter() - started})

    threads = [threading.Thread(target=user, args=(n,)) for n in range(args.users)]
    threads += [threading.Thread(target=searcher, args=(n,)) for n in range(args.searchers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    answers = [r for r in records if r["kind"] == "answer"]
    searches = [r["s"] for r in records if r["kind"] == "search"]
    first = [r["first_token_s"] for r in answers if "first_token_s" in r]
    speed = [r["tokens_per_s"] for r in answers if "tokens_per_s" in r]
    return {
        "answers": len(answers),
        "answers_per_min": round(len(answers) / elapsed * 60, 2),
        "first_token_p50_s": pct(first, 50),
        "first_token_p95_s": pct(first, 95),
        "tokens_per_s_p50": pct(speed, 50),
        "tokens_per_s_min": round(min(speed), 2) if speed else None,
        "searches": len(searches),
        "search_p50_ms": pct([s * 1000 for s in searches], 50),
        "search_p95_ms": pct([s * 1000 for s in searches], 95),
        "elapsed_s": round(elapsed, 1),
    }


# --------------------------------------------------------------------------- the matrix


def run_setting(config: dict, users: int, args: argparse.Namespace, data: Path) -> dict:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if config["passive"]:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    cmd = [
        sys.executable, __file__, "--child",
        "--llm-threads", str(config["llm"]), "--llm-batch-threads", str(config["batch"]),
        "--embed-threads", str(config["embed"]),
        "--users", str(users), "--duration", str(args.duration),
        "--searches", str(args.searches), "--searchers", str(args.searchers),
        "--corpus", str(data / "corpus"), "--index", str(data / "index"),
    ]  # fmt: skip
    # other programs on the machine keeping cores busy (a build, another app)
    spin = [sys.executable, "-c", "while True: pass"]
    busy = [subprocess.Popen(spin) for _ in range(args.busy)]
    try:
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=args.duration * 6
        )
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    if done.returncode != 0:
        raise SystemExit(f"setting {config['name']} x {users} users failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    head = (
        "| setting | users (+ searchers) | answers/min | first token p50 / p95 s "
        "| tokens/s p50 (min) | search p50 / p95 ms |\n|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['setting']} | {r['users']}"
            + (f" (+{r['searchers']})" if r.get("searchers") else "")
            + (f", {r['busy']} busy" if r.get("busy") else "")
            + f" | {r['answers_per_min']} "
            f"| {r['first_token_p50_s']} / {r['first_token_p95_s']} "
            f"| {r['tokens_per_s_p50']} ({r['tokens_per_s_min']}) "
            f"| {r['search_p50_ms']} / {r['search_p95_ms']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="LxE[+passive], comma-separated")
    parser.add_argument("--users", default="1,2,4")
    parser.add_argument("--duration", type=float, default=60, help="seconds per measurement")
    parser.add_argument("--searches", type=int, default=2, help="searches after each answer")
    parser.add_argument(
        "--searchers", type=int, default=0, help="more users who only search, without pause"
    )
    parser.add_argument(
        "--busy", type=int, default=0, help="other processes spinning on a core meanwhile"
    )
    parser.add_argument("--json", help="write the rows here too")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--llm-threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--llm-batch-threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--embed-threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--index", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.users = int(args.users)
        print(json.dumps(run_child(args)))
        return
    if not (PROJECT_ROOT / "index" / "CURRENT").is_file():
        raise SystemExit("error: no index in ./index; build it first with `rag index`")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        shutil.copytree(PROJECT_ROOT / "corpus", data / "corpus")
        shutil.copytree(PROJECT_ROOT / "index", data / "index")
        for name in args.configs.split(","):
            config = parse_config(name.strip())
            for users in (int(u) for u in args.users.split(",")):
                row = {"setting": config["name"], "users": users}
                row.update(searchers=args.searchers, busy=args.busy)
                row.update(run_setting(config, users, args, data))
                print(json.dumps(row), flush=True)
                rows.append(row)
    print(f"\nmachine: {os.cpu_count()} cores; {args.duration:.0f} s per row\n")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
