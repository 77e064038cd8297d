"""Does the LLM's confidence in its own answer tell answerable questions from the rest?

    RAG_LLM_THREADS=1 .venv/bin/python bench/logprobs.py            # collect + analyse
    .venv/bin/python bench/logprobs.py --analyse-only                # analyse stored rows

Every question of the news calibration parts (``tests/data/dev.jsonl``,
``tests/data/nearmiss-calibration.jsonl``) and of the XQuAD-ru calibration part (all its
unanswerable questions, a seeded sample of the answerable ones) is answered by the
pipeline with the configured LLM, which records the log-probability of each token it
generates (``rag.llm.TokenLogprobs``). A row per question: answerable or not, the fitted
model's probability from the signals (decided before the LLM), whether the LLM refused,
whether the answer is right, and the answer's token log-probabilities summarised. Rows go
to ``bench/data/logprobs.jsonl``.

The analysis looks at the questions the signals let through and the LLM answered (the
only ones a check after the LLM could still refuse): the AUC of each log-probability
summary, and the 5-fold cross-validated AUC of a logistic regression on the signals'
probability alone and with the summaries, for "answerable" and, on answerable questions,
for "the answer is right". Only calibration parts are used: nothing here reads a test
part.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.engine import Engine  # noqa: E402
from rag.evaluate import UNANSWERABLE, answer_correct, load_questions  # noqa: E402
from rag.events import Done  # noqa: E402
from rag.llm import load_llm  # noqa: E402
from rag.settings import Settings  # noqa: E402

XQ = ROOT / "bench" / "data" / "xquad-ru"
OUT = ROOT / "bench" / "data" / "logprobs.jsonl"
PARTS = [
    ("news dev", ROOT / "corpus", ROOT / "index", ROOT / "tests/data/dev.jsonl"),
    (
        "news near-miss cal",
        ROOT / "corpus",
        ROOT / "index",
        ROOT / "tests/data/nearmiss-calibration.jsonl",
    ),
    ("xquad-ru cal", XQ / "corpus", XQ / "index", XQ / "calibration.jsonl"),
]
SUMMARIES = ["lp_mean", "lp_min", "lp_low3", "lp_first", "tokens"]


class Recording:
    """The LLM, keeping the token log-probabilities of its latest completion."""

    def __init__(self, backend):
        self.backend = backend
        self.logprobs: list[float] = []

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    def stream(self, messages: list[dict], max_tokens: int, temperature: float):
        self.logprobs = []
        yield from self.backend.stream(messages, max_tokens, temperature, logprobs=self.logprobs)


def final_result(pipeline, item: dict):
    """The pipeline's final result (``AnswerResult``) for one question of a set."""
    return next(
        e.result for e in pipeline.run(item["q"], item.get("history")) if isinstance(e, Done)
    )


def summarise(logprobs: list[float]) -> dict:
    if not logprobs:
        return {name: None for name in SUMMARIES}
    low = sorted(logprobs)[:3]
    return {
        "lp_mean": sum(logprobs) / len(logprobs),
        "lp_min": min(logprobs),
        "lp_low3": sum(low) / len(low),
        "lp_first": logprobs[0],
        "tokens": len(logprobs),
    }


def selected(questions: list[dict], answerable_sample: int | None, seed: int) -> list[dict]:
    if answerable_sample is None:
        return questions
    answerable = [q for q in questions if q["kind"] not in UNANSWERABLE]
    keep = {q["id"] for q in random.Random(seed).sample(answerable, answerable_sample)}
    return [q for q in questions if q["kind"] in UNANSWERABLE or q["id"] in keep]


def collect(xquad_answerable: int, seed: int) -> list[dict]:
    rows = []
    engines: dict[Path, tuple[Engine, Recording]] = {}
    for name, corpus, index, path in PARTS:
        if corpus not in engines:
            settings = Settings.from_env(corpus_dir=corpus, index_dir=index)
            recording = Recording(load_llm(settings))
            engines[corpus] = Engine(settings, llm=recording), recording
            engines[corpus][0].build_index()
        engine, recording = engines[corpus]
        pipeline = engine.pipeline(use_llm=True)
        sample = xquad_answerable if name.startswith("xquad") else None
        questions = selected(load_questions(path), sample, seed)
        for i, item in enumerate(questions, 1):
            recording.logprobs = []
            started = time.perf_counter()
            result = final_result(pipeline, item)
            answerable = item["kind"] not in UNANSWERABLE
            row = {
                "set": name,
                "id": item["id"],
                "kind": item["kind"],
                "answerable": answerable,
                "p_signals": pipeline.calibrator.probability(result.signals),
                "weak": result.weak_evidence,
                "raw": result.raw_answer,
                "answer": result.answer,
                "refused": result.refused,
                "fallback": result.fallback,
                "correct": answerable
                and not result.refused
                and answer_correct(result.answer, item["any"]),
                "seconds": round(time.perf_counter() - started, 2),
                "logprobs": [round(v, 4) for v in recording.logprobs],
            } | summarise(recording.logprobs)
            rows.append(row)
            print(
                f"{name} {i}/{len(questions)} {item['kind']} weak={row['weak']} "
                f"refused={row['refused']} lp_mean={row['lp_mean']} {row['seconds']} s",
                file=sys.stderr,
                flush=True,
            )
    return rows


def add_extractive(rows: list[dict]) -> None:
    """Each row's extractive answer (no LLM) and whether it is right: what a low-confidence
    LLM answer could give way to."""
    by_set = {name: (corpus, index, path) for name, corpus, index, path in PARTS}
    pipelines: dict[Path, object] = {}
    items: dict[tuple[str, str], dict] = {}
    for name, (corpus, index, path) in by_set.items():
        if corpus not in pipelines:
            settings = Settings.from_env(corpus_dir=corpus, index_dir=index)
            pipelines[corpus] = Engine(settings).pipeline(use_llm=False)
        items |= {(name, q["id"]): q for q in load_questions(path)}
    for row in rows:
        item = items[(row["set"], row["id"])]
        pipeline = pipelines[by_set[row["set"]][0]]
        result = final_result(pipeline, item)
        row["extractive_refused"] = result.refused
        row["extractive_correct"] = (
            row["answerable"] and not result.refused and answer_correct(result.answer, item["any"])
        )


def _auc(scores: list[float], labels: list[bool]) -> float | None:
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(labels, scores) if 0 < sum(labels) < len(labels) else None


def _cv_auc(features: list[list[float]], labels: list[bool]) -> float | None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.array(labels, dtype=int)
    if min(y.sum(), len(y) - y.sum()) < 5:
        return None
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    p = cross_val_predict(model, np.array(features), y, cv=folds, method="predict_proba")
    return _auc(list(p[:, 1]), labels)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def analyse(rows: list[dict]) -> str:
    llm_answers = [r for r in rows if not r["weak"] and r["lp_mean"] is not None]
    llm_answers = [r for r in llm_answers if not r["refused"]]
    lines = [
        f"{len(rows)} questions; the signals let {sum(not r['weak'] for r in rows)} through; "
        f"the LLM answered {len(llm_answers)} of them "
        f"({sum(not r['answerable'] for r in llm_answers)} unanswerable)",
        "",
        "| target | questions | feature | AUC |",
        "|---|---|---|---|",
    ]
    targets = [
        ("answerable", llm_answers, [r["answerable"] for r in llm_answers]),
        (
            "answer right",
            [r for r in llm_answers if r["answerable"]],
            [r["correct"] for r in llm_answers if r["answerable"]],
        ),
    ]
    for target, group, labels in targets:
        for name in ["p_signals", *SUMMARIES]:
            auc = _auc([r[name] for r in group], labels)
            lines.append(f"| {target} | {len(group)} | {name} | {_fmt(auc)} |")
        base = [[_logit(r["p_signals"])] for r in group]
        both = [[_logit(r["p_signals"]), r["lp_mean"], r["lp_low3"]] for r in group]
        lines.append(
            f"| {target} | {len(group)} | signals, 5-fold | {_fmt(_cv_auc(base, labels))} |"
        )
        lines.append(
            f"| {target} | {len(group)} | signals + lp_mean + lp_low3, 5-fold "
            f"| {_fmt(_cv_auc(both, labels))} |"
        )
    if "extractive_correct" in rows[0]:
        lines += ["", *_switching(llm_answers, [r for r in rows if r["answerable"]])]
        passed = [r for r in rows if not r["weak"]]
        kept = [r for r in passed if r["refused"]]  # the LLM's own refusals (or unsupported)
        for label, group in (
            ("answerable", [r for r in kept if r["answerable"]]),
            ("unanswerable", [r for r in kept if not r["answerable"]]),
        ):
            right = sum(r["extractive_correct"] for r in group)
            still = sum(r["extractive_refused"] for r in group)
            lines.append(
                f"LLM refusals after the signals let the question through, {label}: "
                f"{len(group)}; the extractive answer would be right on {right}, "
                f"refuse {still}"
            )
    return "\n".join(lines)


def _switching(llm_answers: list[dict], answerable: list[dict]) -> list[str]:
    """Accuracy on all answerable questions, and refusal of the unanswerable ones the
    signals let through, when the LLM answers less sure than a cut (lowest ``lp_low3``)
    give way to the extractive answer."""
    lines = [
        "| LLM answers given to the extractive answer | cut (lp_low3 below) "
        "| accuracy, answerable | refusal, unanswerable the LLM answered |",
        "|---|---|---|---|",
    ]
    ranked = sorted(llm_answers, key=lambda r: r["lp_low3"])
    unanswered = [r for r in llm_answers if not r["answerable"]]
    for share in (0.0, 0.1, 0.2, 0.3, 0.5, 1.0):
        switched = {(r["set"], r["id"]) for r in ranked[: round(share * len(ranked))]}
        cut = ranked[len(switched) - 1]["lp_low3"] if switched else None

        def right(r, switched=switched):
            key = (r["set"], r["id"])
            return r["extractive_correct"] if key in switched else r["correct"]

        def refused(r, switched=switched):
            return r["extractive_refused"] if (r["set"], r["id"]) in switched else r["refused"]

        accuracy = sum(map(right, answerable)) / len(answerable)
        refusal = sum(map(refused, unanswered)) / len(unanswered) if unanswered else None
        lines.append(f"| {share:.0%} | {_fmt(cut)} | {accuracy:.3f} | {_fmt(refusal)} |")
    return lines


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--xquad-answerable", type=int, default=60)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--analyse-only", action="store_true")
    args = parser.parse_args()
    if args.analyse_only:
        rows = [json.loads(line) for line in OUT.read_text("utf-8").splitlines()]
    else:
        rows = collect(args.xquad_answerable, args.seed)
    if "extractive_correct" not in rows[0]:
        add_extractive(rows)
        OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    print(analyse(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
