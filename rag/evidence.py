"""Evidence: the windows of the retrieved hits that the LLM reads, within its budget.

Each hit is cut to the sentences around the one that best matches the question, never
crossing a sentence that addresses the assistant; ``fit_budget`` then trims the prompt
to the LLM's context. Offsets stay exact, so citations resolve in the original article.
"""

from __future__ import annotations

import math
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
    hit,
    question: str,
    budget: int,
    count_tokens,
    similarities: Sequence[float] | None = None,
    grow: bool = False,
) -> tuple[int, int, str] | None:
    """The whole hit when it fits ``budget``; else the run of its sentences, within
    budget, that holds the most of the question's words (weighted by rarity among the
    hit's sentences: a name counts more than a word every sentence has), never crossing a
    sentence that addresses the assistant (None if no other is left). When no sentence
    shares a word with the question, ``similarities`` (one per sentence) rank them.
    ``grow`` fills the rest of the budget with neighbours."""
    spans = sentence_spans(hit.text)
    if not spans:
        return None
    texts = [hit.text[a:b] for a, b in spans]
    clean = [not INJECTION.search(t) for t in texts]
    if not any(clean):
        return None
    if all(clean) and count_tokens(hit.text) <= budget:
        return hit.start, hit.end, hit.text
    scores = word_weights(question, texts)
    if not any(scores) and similarities is not None:
        scores = list(similarities)
    sizes = [count_tokens(t) for t in texts]
    lo, hi = best_run(sizes, clean, scores, budget)
    while grow:  # one neighbour at a time, preferring the following sentence
        grow = False
        for cand_lo, cand_hi in ((lo, hi + 1), (lo - 1, hi)):
            fits = (
                cand_lo >= 0
                and cand_hi < len(spans)
                and clean[cand_lo]
                and clean[cand_hi]
                and count_tokens(hit.text[spans[cand_lo][0] : spans[cand_hi][1]]) <= budget
            )
            if fits:
                lo, hi, grow = cand_lo, cand_hi, True
                break
    a, b = spans[lo][0], spans[hi][1]
    b = a + prefix_within(hit.text[a:b], lambda t: count_tokens(t) <= budget)
    return hit.start + a, hit.start + b, hit.text[a:b]


def word_weights(question: str, sentences: list[str]) -> list[float]:
    """Per sentence, the question's words it holds, each weighted log(1 + n / df): n
    sentences, df of them holding the word. On the XQuAD-ru calibration part this finds
    the answer more often than a plain count of shared words (0.903 against 0.874 with
    160-token windows)."""
    words = set(tokenize(question))
    held = [words & set(tokenize(t)) for t in sentences]
    n = len(sentences)
    df = {w: sum(w in h for h in held) for w in words}
    return [sum(math.log(1 + n / df[w]) for w in h) for h in held]


def best_run(
    sizes: Sequence[int], clean: list[bool], scores: Sequence[float], budget: int
) -> tuple[int, int]:
    """First and last sentence of the clean run with the highest total score whose
    sentences' token counts (``sizes``) add up to at most ``budget`` (a single sentence
    always qualifies; the shortest run wins a tie). Summing the sentences' counts keeps
    this to one count per sentence; the window is cut to the exact budget afterwards."""
    best: tuple[tuple[float, int], int, int] | None = None
    for lo in range(len(sizes)):
        total, size = 0.0, 0
        for hi in range(lo, len(sizes)):
            size += sizes[hi]
            if not clean[hi] or (hi > lo and size > budget):
                break
            total += scores[hi]
            key = (total, lo - hi)
            if best is None or key > best[0]:
                best = (key, lo, hi)
    assert best is not None  # some sentence is clean
    return best[1], best[2]


def prefix_within(text: str, fits) -> int:
    """Length of the longest word-boundary prefix of ``text`` (cut by fifths) that
    ``fits``; at least one word. Cutting the original keeps offsets exact."""
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    keep = len(ends)
    while keep > 1 and not fits(text[: ends[keep - 1]]):
        keep = max(1, int(keep * 0.8))
    return ends[keep - 1] if ends else len(text)


def build_passages(
    hits,
    question: str,
    budget: int | Sequence[int],
    count_tokens,
    similarity: Similarity | None = None,
) -> list[Passage]:
    """Each hit cut to its best window; ``budget`` is one for all, or one per rank (the
    last one for the rest). Hits none of whose sentences shares a word with the question
    (an English question over Russian articles) have their sentences ranked by
    ``similarity`` instead, all in one batch."""
    budgets = [budget] if isinstance(budget, int) else list(budget)
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
        own = budgets[min(i, len(budgets) - 1)]
        window = evidence_window(hit, question, own, count_tokens, similarities.get(i))
        if window is None:
            continue
        start, end, text = window
        n = len(passages) + 1
        passages.append(
            Passage(
                n,
                hit.file,
                hit.title,
                start,
                end,
                text,
                hit.score,
                hit.dense_score,
                hit.date,
                hit.source,
                hit.duplicates,
            )
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
    """Token count without an LLM's tokenizer: one per 2.7 characters. The default LLM's
    tokenizer gives 2.5-3.3 characters per token on the news and XQuAD-ru articles (2.6
    tokens per word, not 2), so windows sized by this are about what the LLM gets."""
    return len(text) * 10 // 27 + 1
