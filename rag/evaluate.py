"""``rag eval``: retrieval and answer quality on a JSONL question set.

One question per line::

    {"id", "kind": "fact|multi|crosslingual|followup|unanswerable|absent|nearmiss", "q",
     "any": [keys, one of which a correct answer contains], "src": [gold files],
     "history": [[user, assistant], ...]}   # optional

Unanswerable kinds: "unanswerable" (nothing in the corpus), "absent" (about an article
left out of the index) and "nearmiss" (an answerable question with one detail changed so
that the articles no longer answer it).

Retrieval is scored on the ranking of distinct files: recall@1 (the first file is
gold), recall@5 (share of gold files among the first five) and MRR. Evidence recall is
the share of answerable questions whose key lies in a gold file's text among the top-k
hits, and among the passages cut from them for the LLM. Answers are scored by
``key_matches`` (a number only as a whole number, a word only at a word start; case and
ё/е ignored), citation precision (cited files within ``src``) and refusals.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import RagError

UNANSWERABLE = ("unanswerable", "absent", "nearmiss")
KINDS = ("fact", "multi", "crosslingual", "followup", *UNANSWERABLE)


class EvalFileError(RagError, ValueError):
    pass


def load_questions(path: Path) -> list[dict]:
    questions = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise EvalFileError(f"{path}:{n}: not JSON ({exc})") from exc
        missing = {"id", "kind", "q"} - set(item)
        if missing:
            raise EvalFileError(f"{path}:{n}: missing {', '.join(sorted(missing))}")
        if item["kind"] not in KINDS:
            raise EvalFileError(f"{path}:{n}: kind must be one of {', '.join(KINDS)}")
        item.setdefault("any", [])
        item.setdefault("src", [])
        item.setdefault("history", [])
        questions.append(item)
    if not questions:
        raise EvalFileError(f"{path}: no questions")
    return questions


def file_ranking(files: list[str]) -> list[str]:
    """Distinct files in order of first appearance."""
    return list(dict.fromkeys(files))


def retrieval_scores(ranking: list[str], gold: list[str]) -> dict[str, float]:
    gold_set = set(gold)
    first = next((i for i, f in enumerate(ranking, 1) if f in gold_set), None)
    return {
        "recall@1": float(bool(ranking) and ranking[0] in gold_set),
        "recall@5": len(gold_set & set(ranking[:5])) / len(gold_set),
        "mrr": 1.0 / first if first else 0.0,
    }


def _fold(text: str) -> str:
    return text.lower().replace("ё", "е")


def key_matches(text: str, key: str) -> bool:
    """Whether ``key`` occurs in ``text`` as a whole number ("11" not in "2011" or "11,5")
    or from a word start ("сведени" in "Сведения", not in "осведомлён"), case and ё/е
    ignored. Keys are stems or spans written before any answer is seen."""
    k = _fold(key.strip())
    if not k:
        return False
    if k[0].isdigit():
        before = r"(?<!\d)(?<!\d[.,])"
    elif k[0].isalnum():
        before = r"(?<!\w)"
    else:
        before = ""
    after = r"(?!\d)(?![.,]\d)" if k[-1].isdigit() else ""
    return re.search(before + re.escape(k) + after, _fold(text)) is not None


def answer_correct(answer: str, expected: list[str]) -> bool:
    return any(key_matches(answer, e) for e in expected)


def gold_inside(texts: list[tuple[str, str]], gold: list[str], keys: list[str]) -> bool:
    """Whether one of ``keys`` lies in a text (file, text) from a ``gold`` file."""
    return any(f in gold and answer_correct(t, keys) for f, t in texts)


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 3) if values else None


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values) * 1000
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 1),
        "p95_ms": round(float(np.percentile(arr, 95)), 1),
    }


def evaluate(
    questions: list[dict],
    retrieve: Callable[[dict], dict],
    answer: Callable[[dict], dict] | None = None,
) -> dict:
    """Score every question. ``retrieve(item)`` returns {"query": standalone query,
    "files": ranked files} and optionally "hits" and "passages", each [(file, text)]:
    the top-k hits and the passages answering gives the LLM. ``answer(item)``, when
    given, returns {"answer", "refused", "cited_files", "timings"} and optionally
    "fallback"."""
    rows = []
    for item in questions:
        started = time.perf_counter()
        found = retrieve(item)
        elapsed = time.perf_counter() - started
        files = found["files"]
        row: dict = {
            "id": item["id"],
            "kind": item["kind"],
            "query": found["query"],
            "files": file_ranking(files)[:5],
            "search_s": elapsed,
        }
        answerable = item["kind"] not in UNANSWERABLE
        if answerable and item["src"]:
            row.update(retrieval_scores(file_ranking(files), item["src"]))
            for name in ("hits", "passages"):
                if name in found:
                    row[f"evidence_{name}"] = gold_inside(found[name], item["src"], item["any"])
        if answer is not None:
            result = answer(item)
            row["answer"] = result["answer"]
            row["refused"] = result["refused"]
            if result.get("fallback"):
                row["fallback"] = result["fallback"]
            row["cited_files"] = result["cited_files"]
            row["timings"] = result.get("timings", {})
            if answerable:
                row["correct"] = (not result["refused"]) and answer_correct(
                    result["answer"], item["any"]
                )
            if result["cited_files"] and item["src"]:
                row["citation_precision"] = sum(
                    f in item["src"] for f in result["cited_files"]
                ) / len(result["cited_files"])
        rows.append(row)
    return {"summary": summarize(rows), "questions": rows}


def evaluate_engine(
    engine, questions: list[dict], mode: str | None, answers: bool, use_llm: bool
) -> dict:
    """``evaluate`` with the engine's own search and answer path: with ``use_llm`` the
    configured LLM loads first, a follow-up is searched with its rewrite, and passages are
    sized by its tokenizer, as answering sizes them."""
    from .answer import answer as run_answer
    from .evidence import approx_tokens

    llm = engine.llm if use_llm else None
    count_tokens = llm.count_tokens if llm is not None else approx_tokens
    evidence = engine.pipeline(use_llm=False).evidence

    def retrieve(item: dict) -> dict:
        history = item.get("history")
        query = engine.standalone_question(item["q"], history, llm)
        files = [h.file for h in engine.search(query, k=10, mode=mode)]
        found = evidence(query, mode=mode, count_tokens=count_tokens)
        return {
            "query": query,
            "files": files,
            "hits": [(h.file, h.text) for h in found.hits],
            "passages": [(p.file, p.text) for p in found.passages],
        }

    def answer(item: dict) -> dict:
        result = run_answer(engine, item["q"], item.get("history"), use_llm=use_llm)
        return {
            "answer": result["answer"],
            "refused": result["refused"],
            "fallback": result["fallback"],
            "cited_files": sorted({c["file"] for c in result["citations"]}),
            "timings": result["timings"],
        }

    return evaluate(questions, retrieve, answer if answers else None)


def summarize(rows: list[dict]) -> dict:
    groups = {kind: [r for r in rows if r["kind"] == kind] for kind in KINDS}
    groups = {k: v for k, v in groups.items() if v}
    groups["overall"] = rows
    out = {}
    for name, group in groups.items():
        scored = [r for r in group if "mrr" in r]
        stats: dict = {"n": len(group)}
        for metric in ("recall@1", "recall@5", "mrr"):
            stats[metric] = _mean([r[metric] for r in scored])
        for part in ("hits", "passages"):
            values = [float(r[f"evidence_{part}"]) for r in group if f"evidence_{part}" in r]
            if values:
                stats[f"evidence_{part}"] = _mean(values)
        if any("refused" in r for r in group):
            answerable = [r for r in group if r["kind"] not in UNANSWERABLE]
            unanswerable = [r for r in group if r["kind"] in UNANSWERABLE]
            stats["answer_accuracy"] = _mean([float(r["correct"]) for r in answerable])
            stats["citation_precision"] = _mean(
                [r["citation_precision"] for r in group if "citation_precision" in r]
            )
            stats["refusal_unanswerable"] = _mean([float(r["refused"]) for r in unanswerable])
            stats["refusal_answerable"] = _mean([float(r["refused"]) for r in answerable])
            for key in ("evidence_s", "first_token_s", "total_s"):
                values = [r["timings"][key] for r in group if key in r.get("timings", {})]
                if values:
                    stats[key.replace("_s", "")] = _percentiles(values)
        stats["search"] = _percentiles([r["search_s"] for r in group])
        out[name] = stats
    return out


def format_table(summaries: dict[str, dict]) -> str:
    """Markdown table: one row per (run, kind)."""
    cols = [
        "recall@1",
        "recall@5",
        "mrr",
        "evidence_hits",
        "evidence_passages",
        "answer_accuracy",
        "citation_precision",
        "refusal_unanswerable",
        "refusal_answerable",
    ]
    present = [c for c in cols if any(c in s for run in summaries.values() for s in run.values())]
    lines = [
        "| run | kind | n | " + " | ".join(present) + " | search p50 ms |",
        "|---" * (len(present) + 4) + "|",
    ]
    for run, summary in summaries.items():
        for kind, stats in summary.items():
            values = [stats.get(c) for c in present]
            cells = ["–" if v is None else f"{v:.3f}" for v in values]
            p50 = stats.get("search", {}).get("p50_ms", "–")
            lines.append(f"| {run} | {kind} | {stats['n']} | " + " | ".join(cells) + f" | {p50} |")
    return "\n".join(lines)
