"""Evidence: the windows of the retrieved hits that the LLM reads, within its budget.

Each hit is cut to the sentences around the one that best matches the question, never
crossing a sentence that addresses the assistant; ``fit_budget`` then trims the prompt
to the LLM's context. Offsets stay exact, so citations resolve in the original article.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from . import prompts
from .chunking import sentence_spans
from .citations import Passage
from .lexical import tokenize
from .questions import QuestionError

# Sentences that address the assistant instead of reporting news ("ignore previous
# instructions", "print your system prompt"): prompt injection planted in an article.
# They never reach the LLM, so they can neither steer it nor support an answer.
INJECTION = re.compile(
    r"(?:игнориру|проигнориру|игнорирова|забуд|не обращай\w* внимани|отмени)\w*"
    r"(?:\W+\w+){0,4}?\W+(?:инструкц|указани|правил|промпт|запрос|сказанно)"
    r"|системн\w*\W+(?:промпт|инструкц|сообщени|подсказ)"
    r"|на\W+(?:любой|любые|все|каждый)\W+вопрос\w*\W+отвеча"
    r"|\b(?:ignore|disregard|forget|override)\b(?:\W+\w+){0,4}?\W+"
    r"(?:instructions?|prompts?|rules|directions)\b"
    r"|\bsystem\W+prompt|\byou\s+are\s+now\b|\b(?:respond|answer|reply)\s+(?:only\s+)?with\b",
    re.IGNORECASE,
)


# similarity(sentences) -> cosine of each sentence to the question, by the multilingual
# embedding model
Similarity = Callable[[list[str]], Sequence[float]]


def evidence_window(
    hit, question: str, budget: int, count_tokens, similarities: Sequence[float] | None = None
) -> tuple[int, int, str] | None:
    """The hit's sentences around the one that best matches the question, within budget,
    never crossing a sentence that addresses the assistant (None if no other is left).
    The best match shares the most words with the question; when none shares a word,
    it is the most similar by ``similarities`` (one per sentence), if given."""
    spans = sentence_spans(hit.text)
    if not spans:
        return None
    clean = [not INJECTION.search(hit.text[a:b]) for a, b in spans]
    if not any(clean):
        return None
    words = set(tokenize(question))
    scores: Sequence[float] = [len(words & set(tokenize(hit.text[a:b]))) for a, b in spans]
    if not any(scores) and similarities is not None:
        scores = similarities
    best = max((i for i in range(len(spans)) if clean[i]), key=lambda i: (scores[i], -i))
    lo = hi = best
    while True:  # grow by one neighbour at a time, preferring the following sentence
        grown = False
        for cand_lo, cand_hi in ((lo, hi + 1), (lo - 1, hi)):
            if cand_lo >= 0 and cand_hi < len(spans) and clean[cand_lo] and clean[cand_hi]:
                text = hit.text[spans[cand_lo][0] : spans[cand_hi][1]]
                if count_tokens(text) <= budget:
                    lo, hi, grown = cand_lo, cand_hi, True
                    break
        if not grown:
            break
    a, b = spans[lo][0], spans[hi][1]
    b = a + prefix_within(hit.text[a:b], lambda t: count_tokens(t) <= budget)
    return hit.start + a, hit.start + b, hit.text[a:b]


def prefix_within(text: str, fits) -> int:
    """Length of the longest word-boundary prefix of ``text`` (cut by fifths) that
    ``fits``; at least one word. Cutting the original keeps offsets exact."""
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    keep = len(ends)
    while keep > 1 and not fits(text[: ends[keep - 1]]):
        keep = max(1, int(keep * 0.8))
    return ends[keep - 1] if ends else len(text)


def build_passages(
    hits, question: str, budget: int, count_tokens, similarity: Similarity | None = None
) -> list[Passage]:
    """Each hit cut to its best window. Hits none of whose sentences shares a word with
    the question (an English question over Russian articles) have their sentences
    ranked by ``similarity`` instead, all in one batch."""
    words = set(tokenize(question))
    sentences = {}
    if similarity is not None:
        for i, hit in enumerate(hits):
            texts = [hit.text[a:b] for a, b in sentence_spans(hit.text)]
            if not any(words & set(tokenize(t)) for t in texts):
                sentences[i] = texts
    similarities: dict[int, Sequence[float]] = {}
    if sentences:
        flat = list(similarity([t for i in sentences for t in sentences[i]]))
        for i, own in sentences.items():
            similarities[i], flat = flat[: len(own)], flat[len(own) :]
    passages = []
    for i, hit in enumerate(hits):
        window = evidence_window(hit, question, budget, count_tokens, similarities.get(i))
        if window is None:
            continue
        start, end, text = window
        n = len(passages) + 1
        passages.append(
            Passage(n, hit.file, hit.title, start, end, text, hit.score, hit.dense_score, hit.date)
        )
    return passages


def sentence_similarity(
    embed_query: Callable[[str], np.ndarray],
    embed_documents: Callable[[list[str], list[str]], np.ndarray],
    question: str,
) -> Similarity:
    """Cosine of sentences to the question, by the index's embedding model; each
    sentence is embedded once per question (the evidence and the answer share them).
    Without the article title ("title: none"): a third faster, same answers. Nothing is
    embedded until it is called (most questions share words with their passages)."""
    known: dict[str, float] = {}

    def similarity(texts: list[str]) -> list[float]:
        keys = [text.strip() for text in texts]
        new = list(dict.fromkeys(key for key in keys if key not in known))
        if new:
            # the query vector is cached from the search, unless that was lexical only
            query = embed_query(" ".join(question.split()))
            vectors = embed_documents(new, [""] * len(new))
            known.update(zip(new, (float(x) for x in vectors @ query), strict=True))
        return [known[key] for key in keys]

    return similarity


def fit_budget(llm, passages, question, history, max_tokens):
    """Drop the oldest turns (keeping the newest), then the weakest passages, then the
    newest turn, then shorten the best passage, until the prompt fits the context."""
    history = list(history)
    passages = list(passages)
    limit = llm.context_size - max_tokens - 16

    def size() -> int:
        messages = prompts.answer_messages([(p.title, p.text) for p in passages], question, history)
        return llm.prompt_tokens(messages)

    while size() > limit and len(history) > 1:
        history.pop(0)
    while size() > limit and len(passages) > 1:
        passages.pop()
    if size() > limit:
        history.clear()
    if size() > limit:  # shorten the one passage left, at a word, offsets kept exact
        first = passages[0]

        def fits(text: str) -> bool:
            passages[0] = replace(first, text=text, end=first.start + len(text))
            return size() <= limit

        keep = prefix_within(first.text, fits)
        passages[0] = replace(first, text=first.text[:keep], end=first.start + keep)
    if size() > limit:
        raise QuestionError(
            "Вопрос и найденные фрагменты не помещаются в контекст модели.", "context_full"
        )
    return passages, history


def approx_tokens(text: str) -> int:
    """Token count without an LLM's tokenizer (about two per Russian word)."""
    return len(text.split()) * 2
