"""Performance report: the shipped configuration next to a plain baseline, in one run.

    .venv/bin/python bench/report.py                # 12 questions (2 of each kind + 2 more)
    .venv/bin/python bench/report.py --limit 24 --json report.json

For each configuration a fresh process indexes the default corpus into a temporary
folder, times hybrid/dense search over every development question (query embedding
included, query cache cleared), then answers a sample of questions with the default
LLM (model loading excluded) and reports time to evidence, time to first token, total
time, time until a verified answer is shown (the draft of ``answer_mode=quote``, else
the final answer), tokens/s and peak memory. The baseline is dense-only retrieval
without reuse of the prompt prefix's KV state, with the conversation in the answer
prompt, the LLM's own wording; "llm wording" is the shipped one with ``answer_mode=llm``.
Prints a Markdown table (the README's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.answer import answer
from rag.engine import Engine
from rag.evaluate import load_questions
from rag.processes import peak_rss_mb
from rag.settings import PROJECT_ROOT, Settings

CONFIGS = {
    "shipped": {},
    # the LLM's own wording instead of the article sentences (rag.settings.answer_mode)
    "llm wording": {"answer_mode": "llm"},
    # the first version's answer path: dense only, no KV reuse, conversation in the prompt,
    # the LLM's own wording
    "baseline": {
        "search_mode": "dense",
        "llm_reuse_prefix": False,
        "answer_history_turns": 2,
        "answer_mode": "llm",
    },
}
QUESTIONS = PROJECT_ROOT / "tests/data/dev.jsonl"


def sample(questions: list[dict], limit: int) -> list[dict]:
    """Round-robin over the kinds, so follow-ups and refusals are timed too."""
    by_kind: dict[str, list[dict]] = {}
    for q in questions:
        by_kind.setdefault(q["kind"], []).append(q)
    picked: list[dict] = []
    while len(picked) < limit and any(by_kind.values()):
        for items in by_kind.values():
            if items and len(picked) < limit:
                picked.append(items.pop(0))
    return picked


def measure(name: str, limit: int) -> dict:
    """One configuration, measured in this process."""
    questions = load_questions(QUESTIONS)
    out: dict = {"config": name}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(index_dir=Path(tmp) / "index", **CONFIGS[name])
        engine = Engine(settings)
        engine.embedder  # noqa: B018 - model load is not indexing
        report = engine.build_index()
        out["index_chunks"] = report.chunks_total
        out["index_chunks_per_s"] = report.chunks_total / report.seconds

        engine.search("прогрев")
        search_ms = []
        for q in questions:
            engine.retriever.clear_cache()
            started = time.perf_counter()
            engine.search(q["q"], k=settings.context_passages)
            search_ms.append((time.perf_counter() - started) * 1000)
        out["search_ms"] = search_ms

        started = time.perf_counter()
        engine.llm  # noqa: B018
        out["llm_load_s"] = time.perf_counter() - started
        timings: dict[str, list[float]] = {}
        for q in sample(questions, limit):
            result = answer(engine, q["q"], q.get("history"))
            for key, value in result["timings"].items():
                timings.setdefault(key, []).append(value)
        out["timings"] = timings
        out["peak_rss_mb"] = peak_rss_mb()
    return out


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        simd = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f" {f}" in flags]
    except OSError:
        simd = []
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{model}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, SIMD: {', '.join(simd) or '?'}; "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def pcts(values: list[float], fmt: str) -> str:
    if not values:
        return "–"
    p50, p95 = np.percentile(values, [50, 95])
    return f"{p50:{fmt}} / {p95:{fmt}}"


def table(results: list[dict], n_questions: int) -> str:
    rows = [
        ("indexing, default corpus (chunks/s)", lambda r: f"{r['index_chunks_per_s']:.2f}"),
        ("search latency p50 / p95 (ms)", lambda r: pcts(r["search_ms"], ".0f")),
        ("LLM load, excluded below (s)", lambda r: f"{r['llm_load_s']:.1f}"),
        ("time to evidence p50 / p95 (s)", lambda r: pcts(r["timings"]["evidence_s"], ".2f")),
        (
            "time to first token p50 / p95 (s)",
            lambda r: pcts(r["timings"].get("first_token_s", []), ".1f"),
        ),
        ("total per answer p50 / p95 (s)", lambda r: pcts(r["timings"]["total_s"], ".1f")),
        (
            "verified answer shown p50 / p95 (s)",
            lambda r: pcts(r["timings"]["shown_s"], ".1f"),
        ),
        ("tokens/s p50 / p95", lambda r: pcts(r["timings"].get("tokens_per_s", []), ".1f")),
        ("peak RSS (MB)", lambda r: f"{r['peak_rss_mb']:.0f}"),
    ]
    head = "| | " + " | ".join(r["config"] for r in results) + " |"
    lines = [head, "|---" * (len(results) + 1) + "|"]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in results) + " |")
    return "\n".join(lines) + (
        f"\n\n{len(results[0]['search_ms'])} questions for search, {n_questions} answered "
        "(first token: questions that reached the LLM)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=12, help="questions answered per config")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--one", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # child process: one configuration, JSON on stdout
        print(json.dumps(measure(args.one, args.limit)))
        return
    results = []
    for name in CONFIGS:  # a fresh process each, so memory and caches are not shared
        print(f"measuring {name} …", file=sys.stderr, flush=True)
        run = subprocess.run(
            [sys.executable, __file__, "--one", name, "--limit", str(args.limit)],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(run.stdout.strip().splitlines()[-1]))
    print(f"machine: {machine()}\n")
    print(table(results, args.limit))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
