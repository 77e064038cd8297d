"""The quality table: every question set, extractive answers and (on a sample) the LLM.

    .venv/bin/python bench/quality.py                   # retrieval + extractive, all sets
    .venv/bin/python bench/quality.py --answer-sample 40  # extractive on 40 questions a set
    .venv/bin/python bench/quality.py --llm-sample 8    # also the LLM on 8 questions a set
    .venv/bin/python bench/quality.py --calibrations threshold,fitted  # both, same run
    .venv/bin/python bench/quality.py --variants "extractive_stand_in=1;"  # any settings

Retrieval (evidence recall, article recall) is always scored on every question; answers
(extractive, LLM) on every question or on a seeded sample per set, which the mode column
names with its size.
Rows are sets, columns: answer accuracy (answerable questions), citation precision,
refusal of near-miss and of absent questions (``absent`` and ``unanswerable``: nothing
in the index), false refusals (answerable questions refused), evidence recall in the
top-k hits and in the passages given to the LLM, and article recall@1. With several
``--calibrations`` every answer run is repeated under each answer-or-refuse decision (with
``--variants``, under each set of settings, ``;``-separated, ``key=value,key=value``, an
empty one for the defaults); the LLM's completion of a prompt is computed once and reused,
so the variants differ only in what they do with the same answers (and LLM timings are
not comparable between them). The news sets
use ``corpus/``, the XQuAD-ru parts ``bench/data/xquad-ru/corpus/``; both indexes are
built or updated first."""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.engine import Engine  # noqa: E402
from rag.evaluate import UNANSWERABLE, evaluate_engine, load_questions  # noqa: E402
from rag.llm import load_llm  # noqa: E402
from rag.settings import Settings  # noqa: E402

NEWS = ROOT / "corpus"
XQ = ROOT / "bench" / "data" / "xquad-ru"
SETS = {
    "news dev": (NEWS, ROOT / "tests/data/dev.jsonl"),
    "news heldout": (NEWS, ROOT / "tests/data/heldout.jsonl"),
    "news test": (NEWS, ROOT / "tests/data/test.jsonl"),
    "news near-miss cal": (NEWS, ROOT / "tests/data/nearmiss-calibration.jsonl"),
    "news off-topic cal": (NEWS, ROOT / "tests/data/offtopic-calibration.jsonl"),
    "news near-miss test": (NEWS, ROOT / "tests/data/nearmiss-test.jsonl"),
    "news readers cal": (NEWS, ROOT / "tests/data/readers-calibration.jsonl"),
    "news readers test": (NEWS, ROOT / "tests/data/readers-test.jsonl"),
    "xquad-ru cal": (XQ / "corpus", XQ / "calibration.jsonl"),
    "xquad-ru test": (XQ / "corpus", XQ / "test.jsonl"),
}
COLUMNS = [
    ("n", "n"),
    ("accuracy", "accuracy"),
    ("citation_precision", "citation precision"),
    ("refusal_nearmiss", "refusal near-miss"),
    ("refusal_absent", "refusal absent"),
    ("false_refusal", "false refusals"),
    ("evidence_hits", "evidence top-k"),
    ("evidence_passages", "evidence in passages"),
    ("recall@1", "article recall@1"),
]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def table_row(rows: list[dict]) -> dict:
    """The columns of one set from ``evaluate``'s question rows."""
    answerable = [r for r in rows if r["kind"] not in UNANSWERABLE]
    near = [r for r in rows if r["kind"] == "nearmiss"]
    absent = [r for r in rows if r["kind"] in ("absent", "unanswerable")]
    answered = "refused" in (rows[0] if rows else {})
    return {
        "n": len(rows),
        "accuracy": _mean([float(r["correct"]) for r in answerable]) if answered else None,
        "citation_precision": _mean(
            [r["citation_precision"] for r in rows if "citation_precision" in r]
        ),
        "refusal_nearmiss": _mean([float(r["refused"]) for r in near]) if answered else None,
        "refusal_absent": _mean([float(r["refused"]) for r in absent]) if answered else None,
        "false_refusal": _mean([float(r["refused"]) for r in answerable]) if answered else None,
        "evidence_hits": _mean([float(r["evidence_hits"]) for r in rows if "evidence_hits" in r]),
        "evidence_passages": _mean(
            [float(r["evidence_passages"]) for r in rows if "evidence_passages" in r]
        ),
        "recall@1": _mean([r["recall@1"] for r in rows if "recall@1" in r]),
    }


class ReusedLLM:
    """The configured LLM, each distinct prompt completed once: calibrations compared in
    one run then see the same answers wherever they both let the LLM answer."""

    def __init__(self, backend):
        self.backend = backend
        self.completions: dict[str, list[str]] = {}

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    def stream(self, messages: list[dict], max_tokens: int, temperature: float):
        key = json.dumps([messages, max_tokens, temperature], ensure_ascii=False)
        if key not in self.completions:
            self.completions[key] = list(self.backend.stream(messages, max_tokens, temperature))
        yield from self.completions[key]


def _variants(calibrations: str | None, variants: str | None) -> list[tuple[str, dict]]:
    """(label, settings changes) to run every answer set under."""
    if calibrations:
        return [(c, {"calibration": c}) for c in calibrations.split(",")]
    if not variants:
        return [("", {})]
    out = []
    for spec in variants.split(";"):
        pairs = [p.split("=", 1) for p in spec.split(",") if p.strip()]
        out.append((spec.strip() or "defaults", {k.strip(): v.strip() for k, v in pairs}))
    return out


def format_rows(table: list[tuple[str, str, dict]]) -> str:
    head = "| set | mode | " + " | ".join(label for _, label in COLUMNS) + " |"
    lines = [head, "|---" * (len(COLUMNS) + 2) + "|"]
    for name, mode, row in table:
        cells = [
            str(row[k]) if k == "n" else ("–" if row[k] is None else f"{row[k]:.3f}")
            for k, _ in COLUMNS
        ]
        lines.append(f"| {name} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", help="comma-separated set names (default: all)")
    parser.add_argument(
        "--answer-sample", type=int, help="extractive answers on N questions a set (0: none)"
    )
    parser.add_argument("--llm-sample", type=int, default=0, help="LLM on N questions a set")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--news-index", type=Path, default=ROOT / "index")
    parser.add_argument("--xquad-index", type=Path, default=XQ / "index")
    parser.add_argument("--json", type=Path, help="also write every question row here")
    parser.add_argument(
        "--calibrations", help="comma-separated answer-or-refuse decisions (default: the setting)"
    )
    parser.add_argument(
        "--variants", help="';'-separated settings to compare, each 'key=value,key=value'"
    )
    args = parser.parse_args()
    names = args.sets.split(",") if args.sets else list(SETS)
    indexes = {NEWS: args.news_index, XQ / "corpus": args.xquad_index}
    engines: dict[Path, Engine] = {}
    defaults: dict[Path, Settings] = {}
    variants = _variants(args.calibrations, args.variants)
    table, dump = [], {}
    for name in names:
        corpus, path = SETS[name]
        if corpus not in engines:
            settings = Settings.from_env(corpus_dir=corpus, index_dir=indexes[corpus])
            llm = ReusedLLM(load_llm(settings)) if args.llm_sample else None
            engine = Engine(settings, llm=llm)
            engine.build_index()  # incremental: a no-op when up to date
            engines[corpus] = engine
            defaults[corpus] = settings
        engine = engines[corpus]
        questions = load_questions(path)
        full = args.answer_sample is None or args.answer_sample >= len(questions)
        runs = [] if full else [("retrieval", questions, False, False)]
        for size, use_llm, label in (
            (args.answer_sample, False, "extractive"),
            (args.llm_sample, True, "LLM"),
        ):
            if size is None or size >= len(questions):
                runs.append((label, questions, True, use_llm))
            elif size:
                sample = random.Random(args.seed).sample(questions, size)
                runs.append((f"{label}, sample of {size}", sample, True, use_llm))
        for mode, items, answers, use_llm in runs:
            for variant, changes in variants if answers else [("", {})]:
                engine.settings = defaults[corpus].replace(**changes)
                label = f"{mode}, {variant}" if answers and len(variants) > 1 else mode
                result = evaluate_engine(engine, items, None, answers=answers, use_llm=use_llm)
                table.append((name, label, table_row(result["questions"])))
                dump[f"{name} / {label}"] = result["questions"]
                print(format_rows(table[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(format_rows(table))
    if args.json:
        args.json.write_text(json.dumps(dump, ensure_ascii=False, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
