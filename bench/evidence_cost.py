"""What the LLM is given per question: evidence recall in its passages and new prompt tokens.

    .venv/bin/python bench/evidence_cost.py bench/data/xquad-ru/calibration.jsonl \\
        --corpus bench/data/xquad-ru/corpus --index bench/data/xquad-ru/index

Passages are cut as answering cuts them, sized by the configured LLM's tokenizer (the
model loads; nothing is generated). "New prompt tokens" are those of the answer prompt
after its fixed part (system text and examples, whose evaluated state is reused): time
to first token grows with them (prefill, about 100 tokens/s on 2 cores). The time is that
of cutting the windows (the search is timed by ``rag eval``). To measure an older
version, run a copy of this script placed in a checkout of it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import prompts  # noqa: E402
from rag.engine import Engine  # noqa: E402
from rag.evaluate import UNANSWERABLE, gold_inside, load_questions  # noqa: E402
from rag.evidence import build_passages, sentence_similarity  # noqa: E402
from rag.settings import Settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--index", type=Path)
    args = parser.parse_args()
    overrides = {k: v for k, v in (("corpus_dir", args.corpus), ("index_dir", args.index)) if v}
    engine = Engine(Settings.from_env(**overrides))
    settings, llm = engine.settings, engine.llm
    fixed = llm.prompt_tokens(prompts.fixed_messages())
    found, tokens, seconds = [], [], []
    for item in load_questions(args.file):
        if item["kind"] in UNANSWERABLE or not item["src"]:
            continue
        query = engine.standalone_question(item["q"], item["history"], None)
        hits = engine.search(query, k=settings.context_passages)
        similarity = sentence_similarity(
            engine.retriever.embed_query, engine.embedder.embed_documents, query
        )
        started = time.perf_counter()
        budgets = settings.passage_tokens  # older versions: one for all passages
        if hasattr(settings, "top_passage_tokens"):
            budgets = (settings.top_passage_tokens, settings.passage_tokens)
        passages = build_passages(hits, query, budgets, llm.count_tokens, similarity)
        seconds.append(time.perf_counter() - started)
        texts = [(p.file, p.text) for p in passages]
        found.append(gold_inside(texts, item["src"], item["any"]))
        messages = prompts.answer_messages([(p.title, p.text) for p in passages], query, [])
        tokens.append(llm.prompt_tokens(messages) - fixed)
    n = len(found)
    tokens.sort()
    print(f"questions {n}, evidence in passages {sum(found) / n:.3f}")
    print(
        f"new prompt tokens: mean {sum(tokens) / n:.0f}, p50 {tokens[n // 2]}, "
        f"p95 {tokens[int(n * 0.95)]}, max {tokens[-1]}"
    )
    print(f"windows: mean {1000 * sum(seconds) / n:.1f} ms per question")
    return 0


if __name__ == "__main__":
    sys.exit(main())
