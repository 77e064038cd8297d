"""Fit the shipped answer-or-refuse model (rag/data/calibration.json) on the calibration
parts of both corpora, and print its refusal / false-refusal curve there.

    .venv/bin/python bench/calibrate.py                      # fit and write
    .venv/bin/python bench/calibrate.py --false-refusal 0.1  # another operating point
    .venv/bin/python bench/calibrate.py --dry-run            # the curve only
    .venv/bin/python bench/calibrate.py --test               # the shipped model's curve
                                                             # on the test parts (no fit)

Only calibration parts are read: the news development set and the news near-miss
calibration part over ``corpus/``, the XQuAD-ru calibration part (with its absent-article
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

from rag.calibration import SHIPPED, FittedCalibrator, collect, curve, fit  # noqa: E402
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
TEST_PARTS = {
    "news test": (NEWS, ROOT / "index", ROOT / "tests/data/test.jsonl"),
    "news heldout": (NEWS, ROOT / "index", ROOT / "tests/data/heldout.jsonl"),
    "news near-miss test": (NEWS, ROOT / "index", ROOT / "tests/data/nearmiss-test.jsonl"),
    "xquad-ru test": (XQ / "corpus", XQ / "index", XQ / "test.jsonl"),
}
THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]


def corpus_weights(parts: dict) -> list[float]:
    """One weight per question so that each corpus counts alike: the 72 news questions
    as much as the 305 XQuAD-ru ones (the news archive is what the app is for)."""
    sizes: dict[Path, int] = {}
    for name, (sig, _) in parts.items():
        sizes[PARTS[name][0]] = sizes.get(PARTS[name][0], 0) + len(sig)
    return [1 / sizes[PARTS[name][0]] for name, (sig, _) in parts.items() for _ in sig]


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
    args = parser.parse_args()
    if args.test:
        print_curve(FittedCalibrator.load(args.out, Settings.from_env()), collect_parts(TEST_PARTS))
        return 0
    parts = collect_parts(PARTS)
    signals = [s for sig, _ in parts.values() for s in sig]
    answerable = [a for _, ans in parts.values() for a in ans]
    meta = {"embedding_model": Settings.from_env().embedding_model, "fitted_on": list(PARTS)}
    fitted = fit(signals, answerable, args.false_refusal, meta, corpus_weights(parts))
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
