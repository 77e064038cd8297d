"""Answer latency with the default models: evidence, first token, total, tokens/s.

    .venv/bin/python bench/answer_speed.py             # the shipped configuration
    .venv/bin/python bench/answer_speed.py --compare   # and a plain baseline, side by side

The baseline is dense-only retrieval with no reuse of the prompt prefix's KV state.
Model loading is excluded (it happens once per process).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.answer import answer
from rag.engine import Engine
from rag.evaluate import load_questions
from rag.settings import PROJECT_ROOT, Settings


def run(settings: Settings, questions: list[dict]) -> dict[str, list[float]]:
    engine = Engine(settings)
    started = time.perf_counter()
    engine.llm  # noqa: B018
    engine.search("прогрев")
    load = time.perf_counter() - started
    out: dict[str, list[float]] = {"load_s": [load]}
    for item in questions:
        result = answer(engine, item["q"], item.get("history"))
        for key, value in result["timings"].items():
            out.setdefault(key, []).append(value)
    return out


def line(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:>16}: –"
    arr = np.asarray(values)
    p50, p95 = np.percentile(arr, 50), np.percentile(arr, 95)
    return f"{name:>16}: p50 {p50:7.2f}  p95 {p95:7.2f}  (n={len(arr)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=PROJECT_ROOT / "tests/data/dev.jsonl")
    parser.add_argument("--limit", type=int, default=0, help="first N questions only")
    parser.add_argument("--compare", action="store_true", help="also run the plain baseline")
    args = parser.parse_args()
    questions = load_questions(args.questions)
    if args.limit:
        questions = questions[: args.limit]
    runs = {"shipped (hybrid, KV prefix reuse)": Settings.from_env()}
    if args.compare:
        runs["baseline (dense, no KV reuse)"] = Settings.from_env(
            search_mode="dense", llm_reuse_prefix=False
        )
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {len(questions)} questions")
    for name, settings in runs.items():
        timings = run(settings, questions)
        print(f"\n{name}; LLM {settings.llm_model}, seconds:")
        for key in (
            "load_s",
            "rewrite_s",
            "evidence_s",
            "first_token_s",
            "total_s",
            "tokens_per_s",
        ):
            print(line(key, timings.get(key, [])))
    print(f"\npeak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
