"""Can the LLM judge whether the quoted sentences answer the question?

    .venv/bin/python bench/judge.py                  # collect (≈ 20 min) and analyse
    .venv/bin/python bench/judge.py --analyse-only   # analyse stored rows

For every question of the calibration parts (news development set, news near-miss and
off-topic calibration parts, XQuAD-ru calibration part) the pipeline finds the evidence
and the extractive answer (the quoted sentences, no LLM), and the default LLM is asked
one question with a one-word answer: do these sentences answer exactly this question?
Its judgement is read from the logits of its first answer token: the log-odds of "да"
against "нет" (each the total probability of the tokens those words begin with). Nothing
is generated, so a judgement costs one prefill of about 150 tokens. Rows (with the
signals of ``rag.signals``) go to ``bench/data/judge.jsonl``.

The analysis: the judgement's AUC within each part, the refusals when it alone decides
at a threshold set for 5 % false refusals on answerable calibration questions, and the
fitted decision's cross-validated refusals with and without it as one more signal
(``rag.calibration.held_out_refusals``, weighted as ``bench/calibrate.py`` weights).
Only calibration parts are read: nothing here reads a test part.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from calibrate import CHECK_PARTS, corpus_weights  # noqa: E402
from calibrate import PARTS as FITTED_PARTS  # noqa: E402

from rag.calibration import held_out_refusals  # noqa: E402
from rag.citations import strip_markers  # noqa: E402
from rag.engine import Engine  # noqa: E402
from rag.evaluate import UNANSWERABLE, load_questions  # noqa: E402
from rag.llm import resolve_llm_path  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.signals import Signals  # noqa: E402

OUT = ROOT / "bench" / "data" / "judge.jsonl"
# the parts bench/calibrate.py fits on, and those it only checks
PARTS = {**FITTED_PARTS, **CHECK_PARTS}
SYSTEM = (
    "Ты внимательно проверяешь, содержит ли текст ответ на вопрос. "
    "Отвечай одним словом: да или нет."
)
USER = (
    "Текст: {text}\n\nВопрос: {question}\n\n"
    "Есть ли в тексте ответ именно на этот вопрос? Ответь да или нет."
)


class Judge:
    """The default LLM (llama.cpp), asked whether a text answers a question."""

    def __init__(self, path: Path, threads: int):
        from llama_cpp import Llama

        self.llama = Llama(
            model_path=str(path),
            n_ctx=2048,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=512,
            verbose=False,
        )
        self.yes = self._first_tokens(["да", "Да", " да", " Да", "ДА"])
        self.no = self._first_tokens(["нет", "Нет", " нет", " Нет", "НЕТ"])

    def _first_tokens(self, words: list[str]) -> list[int]:
        return sorted({self.llama.tokenize(w.encode(), add_bos=False)[0] for w in words})

    def log_odds(self, question: str, text: str) -> float:
        """log P(да) - log P(нет) for the first token of the answer (ChatML prompt)."""
        prompt = (
            f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"
            f"{USER.format(text=text, question=question)}<|im_end|>\n<|im_start|>assistant\n"
        )
        seen: dict[str, float] = {}

        def read(_ids, logits):
            values = np.asarray(logits, dtype=np.float64)
            log_p = values - np.logaddexp.reduce(values)
            seen["yes"] = float(np.logaddexp.reduce(log_p[self.yes]))
            seen["no"] = float(np.logaddexp.reduce(log_p[self.no]))
            return logits

        self.llama.create_completion(prompt, max_tokens=1, temperature=0.0, logits_processor=[read])
        return seen["yes"] - seen["no"]


def collect(threads: int) -> list[dict]:
    settings = Settings.from_env()
    judge = Judge(resolve_llm_path(settings), threads)
    engines: dict[Path, Engine] = {}
    rows, started = [], time.perf_counter()
    for part, (corpus, index, path) in PARTS.items():
        if corpus not in engines:
            engines[corpus] = Engine(
                Settings.from_env(corpus_dir=corpus, index_dir=index, llm_model="", llm_url="")
            )
        pipeline = engines[corpus].pipeline(use_llm=False)
        for item in load_questions(path):
            # as bench/calibrate.py measures them: a follow-up with its history, time filters
            signals, candidate, question = pipeline.judged(item["q"], item.get("history"))
            text = strip_markers(candidate).strip()
            rows.append(
                {
                    "part": part,
                    "id": item["id"],
                    "kind": item["kind"],
                    "answerable": item["kind"] not in UNANSWERABLE,
                    "signals": signals.vector(),
                    "answer": candidate,
                    # no quoted sentence: nothing to judge, as sure a "no" as any
                    "judge": judge.log_odds(question, text) if text else -20.0,
                }
            )
            print(f"{len(rows)} {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows


def auc(positive: list[float], negative: list[float]) -> float:
    """The chance that a random positive scores above a random negative (ties: half)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score([1] * len(positive) + [0] * len(negative), positive + negative))


class _Vector:
    """Signals with the judgement appended, as ``rag.calibration.fit`` reads them."""

    def __init__(self, values: list[float]):
        self.values = values
        names = Signals.names()
        self.missing_numbers = values[names.index("missing_numbers")]
        self.missing_names = values[names.index("missing_names")]

    def vector(self) -> list[float]:
        return self.values


def cross_validated(rows: list[dict], with_judge: bool) -> dict[tuple[str, bool], float]:
    rows = sorted(rows, key=lambda r: list(PARTS).index(r["part"]))  # as corpus_weights
    decisions = held_out_refusals(
        [_Vector(r["signals"] + ([r["judge"]] if with_judge else [])) for r in rows],
        [r["answerable"] for r in rows],
        0.05,
        weights=corpus_weights({p: ([r for r in rows if r["part"] == p], []) for p in PARTS}),
        fitted=[r["part"] in FITTED_PARTS for r in rows],
    )
    refused: dict[tuple[str, bool], list[bool]] = {}
    for row, decided in zip(rows, decisions, strict=True):
        refused.setdefault((row["part"], row["answerable"]), []).extend(decided)
    return {key: sum(v) / len(v) for key, v in refused.items()}


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
    before, after = cross_validated(rows, False), cross_validated(rows, True)
    print("\n| part | refused | signals | signals + judgement |")
    print("|---|---|---|---|")
    for key in sorted(before):
        kind = "answerable (false refusals)" if key[1] else "unanswerable"
        print(f"| {key[0]} | {kind} | {before[key]:.3f} | {after[key]:.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--analyse-only", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not args.analyse_only:
        rows = collect(args.threads)
        OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    rows = [json.loads(line) for line in OUT.read_text("utf-8").splitlines()]
    analyse(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
