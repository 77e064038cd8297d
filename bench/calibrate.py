"""Fit the shipped answer-or-refuse model (rag/data/calibration.json) on the calibration
parts of both corpora, and print its refusal / false-refusal curve there.

    .venv/bin/python bench/calibrate.py                      # fit and write
    .venv/bin/python bench/calibrate.py --false-refusal 0.1  # another operating point
    .venv/bin/python bench/calibrate.py --dry-run            # the curve only
    .venv/bin/python bench/calibrate.py --test               # the shipped model's curve
                                                             # on the test parts (no fit)
    .venv/bin/python bench/calibrate.py --cv [--fit-checks]  # cross-validated refusal
                                                             # per part (no fit written)

Only calibration parts are read: the news development set, the news near-miss
calibration part and (checked, not fitted) the news off-topic and readers' calibration
parts over ``corpus/``, the XQuAD-ru calibration part (with its absent-article
and near-miss questions) over ``bench/data/xquad-ru/corpus/``. ``--test`` reads the test
parts instead, to report the shipped model's curve there; it never fits. Answers on the
test parts are scored by ``bench/quality.py``. ``rag calibrate`` fits a model on one
archive of your own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tqdm import tqdm  # noqa: E402

from rag.calibration import (  # noqa: E402
    SHIPPED,
    FittedCalibrator,
    collect,
    curve,
    fit,
    held_out_refusals,
)
from rag.engine import Engine  # noqa: E402
from rag.evaluate import load_questions  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.signals import Signals  # noqa: E402

NEWS = ROOT / "corpus"
XQ = ROOT / "bench" / "data" / "xquad-ru"
PARTS = {
    "news dev": (NEWS, ROOT / "index", ROOT / "tests/data/dev.jsonl"),
    "news near-miss cal": (NEWS, ROOT / "index", ROOT / "tests/data/nearmiss-calibration.jsonl"),
    "xquad-ru cal": (XQ / "corpus", XQ / "index", XQ / "calibration.jsonl"),
}
# Calibration-side questions the model is checked on but not fitted to (``--fit-checks``
# fits them too). The off-topic part: adding it to the fit did not raise its own
# cross-validated refusal and lowered the news near misses'. The readers' part: the
# settings of the missing-detail rule and of the extractive stand-in were set on this
# model's probabilities as fitted without it; the judged model (bench/judge.py) fits it.
# Fitting this model on it too, with both settings set again, was measured end to end:
# it refused more of everything on the test parts without ranking them better
# (docs/calibration.md, "The plain model fitted on the readers' part too").
CHECK_PARTS = {
    "news off-topic cal": (NEWS, ROOT / "index", ROOT / "tests/data/offtopic-calibration.jsonl"),
    "news readers cal": (NEWS, ROOT / "index", ROOT / "tests/data/readers-calibration.jsonl"),
}
TEST_PARTS = {
    "news test": (NEWS, ROOT / "index", ROOT / "tests/data/test.jsonl"),
    "news heldout": (NEWS, ROOT / "index", ROOT / "tests/data/heldout.jsonl"),
    "news near-miss test": (NEWS, ROOT / "index", ROOT / "tests/data/nearmiss-test.jsonl"),
    "news readers test": (NEWS, ROOT / "index", ROOT / "tests/data/readers-test.jsonl"),
    "xquad-ru test": (XQ / "corpus", XQ / "index", XQ / "test.jsonl"),
}
THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]


def corpus_weights(parts: dict) -> list[float]:
    """One weight per question so that each corpus counts alike: the 72 news questions
    as much as the 305 XQuAD-ru ones (the news archive is what the app is for)."""
    corpus = {name: spec[0] for name, spec in {**PARTS, **CHECK_PARTS}.items()}
    sizes: dict[Path, int] = {}
    for name, (sig, _) in parts.items():
        sizes[corpus[name]] = sizes.get(corpus[name], 0) + len(sig)
    return [1 / sizes[corpus[name]] for name, (sig, _) in parts.items() for _ in sig]


def fit_parts(parts: dict, false_refusal: float, meta: dict | None = None) -> FittedCalibrator:
    signals = [s for sig, _ in parts.values() for s in sig]
    answerable = [a for _, ans in parts.values() for a in ans]
    return fit(signals, answerable, false_refusal, meta, corpus_weights(parts))


def cross_validate(parts: dict, fitted: list[str], false_refusal: float) -> None:
    """Refusal and false refusal of every part on questions held out of the fit (5 folds,
    3 shuffles); only the ``fitted`` parts' training questions are fitted on."""
    names = [name for name, (sig, _) in parts.items() for _ in sig]
    answerable = [a for _, ans in parts.values() for a in ans]
    decisions = held_out_refusals(
        [s for sig, _ in parts.values() for s in sig],
        answerable,
        false_refusal,
        weights=corpus_weights(parts),
        fitted=[name in fitted for name in names],
    )
    refused: dict[tuple[str, bool], list[bool]] = {}
    for name, a, d in zip(names, answerable, decisions, strict=True):
        refused.setdefault((name, a), []).extend(d)
    print("| part | refusal (unanswerable) | false refusal |")
    print("|---|---|---|")
    for name in parts:
        cells = [refused.get((name, a)) for a in (False, True)]
        shown = ["–" if c is None else f"{sum(c) / len(c):.3f}" for c in cells]
        print(f"| {name} | {shown[0]} | {shown[1]} |")


def collect_parts(parts_to_read: dict) -> dict[str, tuple[list[Signals], list[bool]]]:
    """Signals and answerability of every question of these parts (no LLM)."""
    engines: dict[Path, Engine] = {}
    parts = {}
    for name, (corpus, index, path) in parts_to_read.items():
        if corpus not in engines:
            settings = Settings.from_env(
                corpus_dir=corpus, index_dir=index, llm_model="", llm_url=""
            ).replace(calibration="threshold")
            engines[corpus] = Engine(settings)
            engines[corpus].build_index()  # incremental: a no-op when up to date
        questions = load_questions(path)
        with tqdm(total=len(questions), desc=name, file=sys.stderr) as bar:
            parts[name] = collect(engines[corpus].pipeline(use_llm=False), questions, bar.update)
    return parts


def print_curve(fitted: FittedCalibrator, parts: dict) -> None:
    """Refusal and false refusal of every part at fixed thresholds and the model's own."""
    signals = [s for sig, _ in parts.values() for s in sig]
    answerable = [a for _, ans in parts.values() for a in ans]
    print("| part | threshold | refusal (unanswerable) | false refusal |")
    print("|---|---|---|---|")
    for name, (sig, ans) in [*parts.items(), ("all", (signals, answerable))]:
        probabilities = [fitted.probability(s) for s in sig]
        for row in curve(probabilities, ans, [*THRESHOLDS, fitted.threshold]):
            cells = [
                "–" if row[k] is None else f"{row[k]:.3f}" for k in ("refusal", "false_refusal")
            ]
            print(f"| {name} | {row['threshold']:.3f} | {cells[0]} | {cells[1]} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--false-refusal", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=SHIPPED)
    parser.add_argument("--dry-run", action="store_true", help="do not write the file")
    parser.add_argument(
        "--test", action="store_true", help="the curve of the model in --out on the test parts"
    )
    parser.add_argument(
        "--cv", action="store_true", help="cross-validated refusal per part (writes nothing)"
    )
    parser.add_argument("--fit-checks", action="store_true", help="also fit the check parts")
    args = parser.parse_args()
    if args.test:
        print_curve(FittedCalibrator.load(args.out, Settings.from_env()), collect_parts(TEST_PARTS))
        return 0
    parts = collect_parts({**PARTS, **CHECK_PARTS})
    fitted_on = list(PARTS) + (list(CHECK_PARTS) if args.fit_checks else [])
    if args.cv:
        cross_validate(parts, fitted_on, args.false_refusal)
        return 0
    meta = {"embedding_model": Settings.from_env().embedding_model, "fitted_on": fitted_on}
    fitted = fit_parts({n: parts[n] for n in fitted_on}, args.false_refusal, meta)
    print(f"threshold {fitted.threshold:.3f} (false refusals <= {args.false_refusal})")
    weights = {n: round(c, 2) for n, c in zip(Signals.names(), fitted.coef, strict=True)}
    print("coefficients (standardised signals):", weights)
    print_curve(fitted, parts)
    if not args.dry_run:
        fitted.save(args.out)
        print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
