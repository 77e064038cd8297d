"""The LLM's judgement of the quoted sentences, as one more signal of the decision.

    .venv/bin/python bench/judge.py                  # collect (≈ 20 min) and analyse
    .venv/bin/python bench/judge.py --analyse-only   # analyse stored rows
    .venv/bin/python bench/judge.py --fit            # also write rag/data/calibration-judged.json
    .venv/bin/python bench/judge.py --test           # the shipped models on the test parts
    .venv/bin/python bench/judge.py --parts "news dev"  # collect one part again, keep the rest
    .venv/bin/python bench/judge.py --rejudge [--test]  # judge the stored rows again (≈ 12 min)

For every question of the calibration parts (news development set, news near-miss,
off-topic and readers' calibration parts, XQuAD-ru calibration part) the pipeline finds
the evidence and the extractive answer (the quoted sentences) as it does when answering
with the default LLM, and asks that LLM whether they answer exactly the question
(``AnswerPipeline.judged``: ``rag.prompts.JUDGE_USER``, the log-odds of "да" against "нет"
for its first answer token, one prefill). Rows (with the signals of ``rag.signals``) go
to ``bench/data/judge.jsonl``.

The analysis: the judgement's AUC within each part, the refusals when it alone decides
at a threshold set for 5 % false refusals on answerable calibration questions, and the
fitted decision's cross-validated refusals with and without it as one more signal
(``rag.calibration.held_out_refusals``, weighted as ``bench/calibrate.py`` weights).
``--fit`` fits the model answering uses with the LLM on the parts ``bench/calibrate.py``
fits and the readers' calibration part. Only calibration parts are read, except by
``--test``, which collects the test parts once (``bench/data/judge-test.jsonl``) and
reports the shipped decision there, with the LLM's judgement and without it, and the
refusal / false-refusal curve of the decision with it at other thresholds; it fits
nothing. ``--rejudge`` asks the judgement again on the stored rows' quoted sentences,
with the current prompt, without finding the evidence again: what a change of the
judge's prompt alone changes (the signals and the quoted sentences do not depend on it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from calibrate import CHECK_PARTS, TEST_PARTS, corpus_weights  # noqa: E402
from calibrate import PARTS as PLAIN_PARTS  # noqa: E402

from rag.answer import AnswerPipeline  # noqa: E402
from rag.calibration import (  # noqa: E402
    SHIPPED,
    FittedCalibrator,
    JudgedCalibrator,
    fit,
    held_out_refusals,
    judged_path,
)
from rag.engine import Engine  # noqa: E402
from rag.evaluate import UNANSWERABLE, load_questions  # noqa: E402
from rag.llm import waited  # noqa: E402
from rag.prompts import judge_prompt_id  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.signals import Signals  # noqa: E402

OUT = ROOT / "bench" / "data" / "judge.jsonl"
TEST_OUT = ROOT / "bench" / "data" / "judge-test.jsonl"
# The judged model is fitted on the parts bench/calibrate.py fits on and on the readers'
# calibration part, which the plain model only checks: the plain model's probabilities
# carry the settings of the missing-detail rule and of the extractive stand-in, set on it
# as fitted without that part (docs/calibration.md).
FITTED_PARTS = {**PLAIN_PARTS, "news readers cal": CHECK_PARTS["news readers cal"]}
PARTS = {**FITTED_PARTS, **CHECK_PARTS}
WITH_JUDGEMENT = Signals.judged_names()


def collect(parts: dict, threads: int) -> tuple[list[dict], str]:
    """One row per question of ``parts``, and the name of the LLM that judged."""
    engines: dict[Path, Engine] = {}
    rows, started = [], time.perf_counter()
    for part, (corpus, index, path) in parts.items():
        if corpus not in engines:
            settings = Settings.from_env(
                corpus_dir=corpus, index_dir=index, llm_threads=threads, llm_batch_threads=threads
            )
            loaded = next(iter(engines.values()), None)  # one LLM for both corpora
            engines[corpus] = Engine(settings, llm=loaded.llm.backend if loaded else None)
        pipeline = engines[corpus].pipeline(use_llm=True)
        for item in load_questions(path):
            # as bench/calibrate.py measures them: a follow-up with its history, time filters
            signals, candidate, _ = pipeline.judged(item["q"], item.get("history"), judge=True)
            rows.append(
                {
                    "part": part,
                    "id": item["id"],
                    "kind": item["kind"],
                    "answerable": item["kind"] not in UNANSWERABLE,
                    "signals": signals.vector(),
                    "answer": candidate,
                    "judge": signals.judgement,
                }
            )
            print(f"{len(rows)} {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows, next(iter(engines.values())).llm.name


def rejudge(path: Path, parts: dict, threads: int) -> tuple[list[dict], str]:
    """The stored rows of ``path``, those of ``parts`` judged again with the current
    prompt on their stored quoted sentences, and the name of the LLM that judged."""
    settings = Settings.from_env(llm_threads=threads, llm_batch_threads=threads)
    llm = Engine(settings).llm
    # the judgement needs only the LLM: no retriever, no embedder, any calibrator
    pipeline = AnswerPipeline(settings, None, None, llm, FittedCalibrator.load(SHIPPED, settings))
    items = {
        (part, item["id"]): item for part, spec in parts.items() for item in load_questions(spec[2])
    }
    rows, started = [], time.perf_counter()
    for row in read(path):
        if row["part"] in parts:
            item = items[(row["part"], row["id"])]
            # the standalone question the collection judged (no LLM rewrite)
            question = pipeline.plain_standalone(item["q"], item.get("history"))
            row = {**row, "judge": waited(pipeline.judgement(question, row["answer"]))}
            print(f"{len(rows) + 1} {time.perf_counter() - started:.0f} s", file=sys.stderr)
        rows.append(row)
    return rows, llm.name


def as_signals(row: dict) -> Signals:
    return Signals(*row["signals"], judgement=row["judge"])


def auc(positive: list[float], negative: list[float]) -> float:
    """The chance that a random positive scores above a random negative (ties: half)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score([1] * len(positive) + [0] * len(negative), positive + negative))


def cross_validated(rows: list[dict], features: list[str]) -> dict[tuple[str, bool], float]:
    rows = sorted(rows, key=lambda r: list(PARTS).index(r["part"]))  # as corpus_weights
    decisions = held_out_refusals(
        [as_signals(r) for r in rows],
        [r["answerable"] for r in rows],
        0.05,
        weights=corpus_weights({p: ([r for r in rows if r["part"] == p], []) for p in PARTS}),
        fitted=[r["part"] in FITTED_PARTS for r in rows],
        features=features,
    )
    refused: dict[tuple[str, bool], list[bool]] = {}
    for row, decided in zip(rows, decisions, strict=True):
        refused.setdefault((row["part"], row["answerable"]), []).extend(decided)
    return {key: sum(v) / len(v) for key, v in refused.items()}


def fit_judged(rows: list[dict], llm: str) -> FittedCalibrator:
    """The model answering uses with this LLM, fitted as ``bench/calibrate.py`` fits the
    one without it: on the same parts, with the same weights and target."""
    rows = sorted(rows, key=lambda r: list(PARTS).index(r["part"]))
    fitted_rows = [r for r in rows if r["part"] in FITTED_PARTS]
    meta = {
        "embedding_model": Settings.from_env().embedding_model,
        "llm": llm,
        "judge_prompt": judge_prompt_id(),
        "fitted_on": list(FITTED_PARTS),
    }
    return fit(
        [as_signals(r) for r in fitted_rows],
        [r["answerable"] for r in fitted_rows],
        0.05,
        meta,
        corpus_weights({p: ([r for r in fitted_rows if r["part"] == p], []) for p in FITTED_PARTS}),
        WITH_JUDGEMENT,
    )


def judgements(rows: list[dict], parts: list[str], answerable: bool) -> list[float]:
    return [r["judge"] for r in rows if r["part"] in parts and r["answerable"] == answerable]


def analyse(rows: list[dict]) -> None:
    print("| part | questions | n | judgement p10 / p50 / p90 | AUC against the unanswerable |")
    print("|---|---|---|---|---|")
    for part in PARTS:
        for answerable in (True, False):
            values = judgements(rows, [part], answerable)
            if not values:
                continue
            p10, p50, p90 = np.percentile(values, [10, 50, 90])
            other = judgements(rows, [part], not answerable)
            shown = f"{auc(values, other):.3f}" if answerable and other else "–"
            kind = "answerable" if answerable else "unanswerable"
            spread = f"{p10:.2f} / {p50:.2f} / {p90:.2f}"
            print(f"| {part} | {kind} | {len(values)} | {spread} | {shown} |")
    dev = judgements(rows, ["news dev"], True)
    off = judgements(rows, ["news off-topic cal"], False)
    print(f"\nnews dev answerable against news off-topic cal: AUC {auc(dev, off):.3f}")
    for fitted_on in (["news dev"], ["xquad-ru cal"], ["news dev", "xquad-ru cal"]):
        answerable = sorted(judgements(rows, fitted_on, True))
        threshold = answerable[int(0.05 * len(answerable))]
        print(f"\nthe judgement alone, threshold {threshold:.2f} (5 % on {' + '.join(fitted_on)})")
        for part in PARTS:
            cells = []
            for kind in (False, True):
                refused = [v < threshold for v in judgements(rows, [part], kind)]
                cells.append(f"{sum(refused) / len(refused):.3f}" if refused else "–")
            print(f"  {part}: refusal {cells[0]}, false refusals {cells[1]}")
    before, after = cross_validated(rows, Signals.names()), cross_validated(rows, WITH_JUDGEMENT)
    print("\n| part | refused | signals | signals + judgement |")
    print("|---|---|---|---|")
    for key in sorted(before):
        kind = "answerable (false refusals)" if key[1] else "unanswerable"
        print(f"| {key[0]} | {kind} | {before[key]:.3f} | {after[key]:.3f} |")


def test_parts(rows: list[dict]) -> None:
    """Refusals of the shipped decision on the test parts, without and with the judgement
    (the decision answering makes, missing-detail rule included)."""
    settings = Settings.from_env()
    plain = FittedCalibrator.load(SHIPPED, settings)
    judged = JudgedCalibrator(FittedCalibrator.load(judged_path(SHIPPED), settings), plain)
    print("| part | refused | signals | signals + judgement |")
    print("|---|---|---|---|")
    for part in TEST_PARTS:
        for answerable in (False, True):
            chosen = [
                as_signals(r) for r in rows if r["part"] == part and r["answerable"] == answerable
            ]
            if not chosen:
                continue
            cells = [
                f"{sum(c.refuse(s, extractive=False) for s in chosen) / len(chosen):.3f}"
                for c in (plain, judged)
            ]
            kind = "answerable (false refusals)" if answerable else "unanswerable"
            print(f"| {part} | {kind} ({len(chosen)}) | {cells[0]} | {cells[1]} |")


CURVE_THRESHOLDS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


def test_curve(rows: list[dict]) -> None:
    """The shipped decision with the judgement at other thresholds of the judged model
    (the missing-detail rule kept): refusal against false refusal on each test part and
    on all of them together. The threshold was chosen on the calibration parts; this
    shows what another choice would have given, it does not choose."""
    settings = Settings.from_env()
    plain = FittedCalibrator.load(SHIPPED, settings)
    judged = FittedCalibrator.load(judged_path(SHIPPED), settings)
    thresholds = sorted({*CURVE_THRESHOLDS, judged.threshold})
    print("\n| part | threshold | refusal (unanswerable) | false refusal |")
    print("|---|---|---|---|")
    for part in [*TEST_PARTS, "all"]:
        chosen = [r for r in rows if part in ("all", r["part"])]
        kinds = [
            [as_signals(r) for r in chosen if r["answerable"] == answerable]
            for answerable in (False, True)
        ]
        for threshold in thresholds:
            decision = JudgedCalibrator(replace(judged, threshold=threshold), plain)
            cells = []
            for kind in kinds:
                refused = [decision.refuse(s, extractive=False) for s in kind]
                cells.append(f"{sum(refused) / len(refused):.3f}" if refused else "–")
            mark = " (shipped)" if threshold == judged.threshold else ""
            print(f"| {part} | {threshold:.3f}{mark} | {cells[0]} | {cells[1]} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--analyse-only", action="store_true")
    parser.add_argument("--fit", action="store_true", help="write the judged model")
    parser.add_argument("--test", action="store_true", help="the test parts (fits nothing)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--parts", help="collect only these parts (comma-separated), keep the others' rows"
    )
    parser.add_argument(
        "--rejudge", action="store_true", help="judge the stored rows again, same evidence"
    )
    args = parser.parse_args()
    chosen = args.parts.split(",") if args.parts else None
    if args.test:
        if args.rejudge:
            write(TEST_OUT, rejudge(TEST_OUT, _only(TEST_PARTS, chosen), args.threads)[0])
        elif not args.analyse_only:
            rows, _ = collect(_only(TEST_PARTS, chosen), args.threads)
            write(TEST_OUT, merged(TEST_OUT, rows, TEST_PARTS, chosen))
        test_parts(read(TEST_OUT))
        test_curve(read(TEST_OUT))
        return 0
    llm = None
    if args.rejudge:
        rows, llm = rejudge(OUT, _only(PARTS, chosen), args.threads)
        write(OUT, rows)
    elif not args.analyse_only:
        rows, llm = collect(_only(PARTS, chosen), args.threads)
        write(OUT, merged(OUT, rows, PARTS, chosen))
    rows = read(OUT)
    analyse(rows)
    if args.fit:
        llm = llm or Engine().llm.name
        fitted = fit_judged(rows, llm)
        weights = {n: round(c, 2) for n, c in zip(fitted.features, fitted.coef, strict=True)}
        print(f"\nthreshold {fitted.threshold:.3f}; coefficients (standardised): {weights}")
        fitted.save(judged_path(SHIPPED))
        print(f"written: {judged_path(SHIPPED)}")
    return 0


def _only(parts: dict, chosen: list[str] | None) -> dict:
    unknown = set(chosen or []) - set(parts)
    if unknown:
        raise SystemExit(f"unknown parts: {', '.join(sorted(unknown))}; known: {', '.join(parts)}")
    return {n: spec for n, spec in parts.items() if chosen is None or n in chosen}


def merged(path: Path, rows: list[dict], parts: dict, chosen: list[str] | None) -> list[dict]:
    """``rows`` of the ``chosen`` parts with the stored rows of the others, in the
    parts' order (all of them new when none are chosen)."""
    if chosen is None:
        return rows
    kept = [r for r in read(path) if r["part"] not in chosen] if path.exists() else []
    order = list(parts)
    return sorted(kept + rows, key=lambda r: order.index(r["part"]))


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


if __name__ == "__main__":
    sys.exit(main())
