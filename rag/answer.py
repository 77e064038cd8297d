"""Answer a question from retrieved passages, as one stream of events.

``ask()`` yields, in order: the standalone question (for follow-ups), the
evidence (before any LLM work), answer tokens as they come, and a final result
with verified citations and timings. A follow-up that the LLM rewrites first gets
a provisional evidence event before the rewrite, so that passages show within a
second. The UI, the CLI and the benchmarks all consume this one generator.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from . import prompts
from .answer_types import off_type
from .chunking import sentence_spans
from .citations import Passage, check_answer, parse_markers, strip_markers
from .errors import RagError
from .lexical import tokenize
from .llm import Waiting


def _visible(ch: str) -> str:
    """Control and line-separator characters become spaces; invisible format characters
    (zero-width, bidi overrides and isolates, soft hyphen, BOM) are dropped."""
    category = unicodedata.category(ch)
    if category in ("Cc", "Zl", "Zp") or ch == "\u200b":
        return " "
    return "" if category == "Cf" else ch


class QuestionError(RagError, ValueError):
    """The question cannot be asked as it is; the message says why. ``code`` and ``params``
    let a UI say the same in its own language (its label table has a text per code)."""

    def __init__(self, message: str, code: str = "", **params: object):
        super().__init__(message)
        self.code = code
        self.params = params


def clean_question(question: str, max_chars: int) -> str:
    text = unicodedata.normalize("NFC", "".join(map(_visible, question or "")))
    text = " ".join(text.split())
    if not text or not any(ch.isalnum() for ch in text):
        raise QuestionError(
            "Пустой вопрос: напишите, что вы хотите узнать из статей.", "empty_question"
        )
    if len(text) > max_chars:
        raise QuestionError(
            f"Вопрос слишком длинный ({len(text)} символов, максимум {max_chars}). "
            "Сократите его до сути.",
            "long_question",
            n=len(text),
            max=max_chars,
        )
    return text


def language(text: str) -> str:
    cyr = sum("а" <= ch.lower() <= "я" or ch.lower() in "ёәғқңөұүһі" for ch in text)
    lat = sum("a" <= ch.lower() <= "z" for ch in text)
    return "en" if lat > cyr else "ru"


def is_refusal(text: str) -> bool:
    low = strip_markers(text).lower().strip(' .«»"')
    return any(r.lower().rstrip(".") in low for r in prompts.REFUSAL.values()) or low.startswith(
        ("в найденных статьях нет", "в статьях нет", "the articles found do not")
    )


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


def extractive_answer(
    question: str,
    passages: list[Passage],
    similarity: Similarity | None = None,
) -> str:
    """The best-matching sentences of the evidence, each with its citation (no LLM), and
    the sentence after one of them when it names its source ("Об этом сообщил …").

    Sentences are ranked by the question's words they share. When none shares a word
    (an English question over Russian articles), ``similarity`` to the question ranks
    them instead: the embedding model is multilingual."""
    words = set(tokenize(question))
    items = [(p, p.text[a:b].strip()) for p in passages for a, b in sentence_spans(p.text)]
    scored = [(len(words & set(tokenize(t))), -p.n, t, p.n, i) for i, (p, t) in enumerate(items)]
    chosen = sorted((item for item in scored if item[0] > 0), reverse=True)[:2]
    if not chosen and items and similarity is not None:
        sims = similarity([text for _, text in items])
        chosen = [scored[i] for i in sorted(range(len(items)), key=lambda i: -sims[i])[:2]]
    chosen = chosen or scored[:1]
    picked = {item[-1] for item in chosen}
    for i in list(picked):
        # "Об этом сообщил …" says who said the sentence before it: keep them together
        following = i + 1 < len(items) and items[i + 1][0] is items[i][0]
        if following and ATTRIBUTION.match(items[i + 1][1]):
            picked.add(i + 1)
    parts = []
    for i in sorted(picked, key=lambda i: (items[i][0].n, i)):
        passage, text = items[i]
        end = len(text.rstrip(".!?…"))
        # a headline has no full stop: give it one, or it runs into the next sentence
        parts.append(f"{text[:end]} [{passage.n}]{text[end:] or '.'}")
    return " ".join(parts)


# A news sentence that names the source of the one before it
ATTRIBUTION = re.compile(
    r"\W*(?:об этом|как (?:сообщил|рассказал|заявил|отметил|пояснил)\w*)\b", re.IGNORECASE
)


def sentence_similarity(engine, question: str) -> Similarity:
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
            query = engine.retriever.embed_query(" ".join(question.split()))
            vectors = engine.embedder.embed_documents(new, [""] * len(new))
            known.update(zip(new, (float(x) for x in vectors @ query), strict=True))
        return [known[key] for key in keys]

    return similarity


def echoes(answer: str, question: str, passages: list[Passage]) -> bool:
    """Whether every content word of ``answer`` is already in the question or in the
    headline of a passage it cites. Unsure, the small model repeats the question ("Спецслужбы
    обязаны предотвращением терактов [1].") or a headline instead of answering: 13 of 58
    development answers did, and answering those extractively raised accuracy 0.66 → 0.72."""
    words = set(tokenize(strip_markers(answer)))
    cited = set(parse_markers(answer))
    known = set(tokenize(question))
    for p in passages:
        if p.n in cited:
            known.update(tokenize(p.title))
    return bool(words) and words <= known


def unusable(answer: str, question: str, lang: str, passages: list[Passage]) -> str | None:
    """Why an LLM answer should give way to the extractive one (or to the refusal), or None.

    "echo": it only repeats the question or a cited headline (see ``echoes``).
    "language": asked in English, the small model answers with a Russian passage sentence,
    most often one that does not hold the asked fact (3 of 5 on the development set),
    while the embedding model, which is multilingual, picks the right sentence (5 of 5).
    "off_type": it is not the kind of answer asked for, such as a bare date to a question
    about an amount (see ``rag.answer_types``)."""
    if echoes(answer, question, passages):
        return "echo"
    if language(strip_markers(answer)) != lang:
        return "language"
    if off_type(answer, question, _texts(passages)):
        return "off_type"
    return None


def _texts(passages: list[Passage]) -> list[str]:
    return [t for p in passages for t in (p.title, p.text)]


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


def find_evidence(engine, query: str, count_tokens=approx_tokens, k=None, mode=None, filters=None):
    """The hits for ``query`` and the passages cut from them for the LLM, with the
    sentence similarity used: the evidence answering shows, without running the LLM
    (``rag eval`` scores it)."""
    settings = engine.settings
    hits = engine.search(query, k=k or settings.context_passages, mode=mode, filters=filters)
    similarity = sentence_similarity(engine, query)
    passages = build_passages(hits, query, settings.passage_tokens, count_tokens, similarity)
    return hits, passages, similarity


def ask(
    engine,
    question: str,
    history: list[tuple[str, str]] | None = None,
    use_llm: bool = True,
    k: int | None = None,
    mode: str | None = None,
    temperature: float | None = None,
    filters=None,
) -> Iterator[dict]:
    """Stream the answer to ``question`` as events (see module docstring).

    ``filters`` (rag.timefilter.Filters) limit the articles; a time expression in the
    question adds to them, and the result's ``filters`` says what was applied."""
    settings = engine.settings
    history = [(u, a) for u, a in (history or [])][-settings.history_turns :]
    question = clean_question(question, settings.max_question_chars)
    lang = language(question)
    llm = engine.llm if use_llm else None  # loading models is not part of answering
    engine.retriever.index  # noqa: B018
    engine.embedder  # noqa: B018
    started = time.perf_counter()
    timings: dict[str, float] = {}
    count_tokens = llm.count_tokens if llm is not None else approx_tokens

    applied = engine.filters_for(question, filters)

    def find(query: str) -> tuple[list[Passage], Similarity]:
        _, passages, similarity = find_evidence(engine, query, count_tokens, k, mode, applied)
        return passages, similarity

    if llm is not None and engine.needs_rewrite(question, history):
        # The LLM rewrite of a follow-up takes seconds: meanwhile show what the follow-up
        # and the previous question find together (the answer uses the rewrite's passages).
        early, _ = find(engine.contextual_query(question, history))
        timings["evidence_s"] = time.perf_counter() - started
        yield {"type": "evidence", "passages": [p.to_dict() for p in early], "provisional": True}

    standalone = engine.standalone_question(question, history, llm=llm)
    timings["rewrite_s"] = time.perf_counter() - started
    yield {"type": "standalone", "question": standalone}

    passages, similarity = find(standalone)
    timings.setdefault("evidence_s", time.perf_counter() - started)  # first shown
    timings["answer_evidence_s"] = time.perf_counter() - started
    yield {"type": "evidence", "passages": [p.to_dict() for p in passages], "provisional": False}

    top_dense = max((p.dense_score or 0.0 for p in passages), default=0.0)
    coverage = engine.index.lexical_coverage(standalone)
    weak = not passages or (
        top_dense < settings.refusal_min_dense and coverage < settings.refusal_min_coverage
    )
    raw = ""
    if weak:
        raw = prompts.REFUSAL[lang]
        yield {"type": "token", "text": raw}
    elif llm is None:
        raw = extractive_answer(standalone, passages, similarity)
        yield {"type": "token", "text": raw}
    else:
        # With the conversation in the prompt the LLM reads the question as asked;
        # without it, the rewritten question carries the context.
        turns = settings.answer_history_turns
        prompt_history = history[-turns:] if turns else []
        asked = question if prompt_history else standalone
        passages, kept_history = fit_budget(
            llm, passages, asked, prompt_history, settings.llm_max_tokens
        )
        messages = prompts.answer_messages(
            [(p.title, p.text) for p in passages], asked, kept_history
        )
        temp = settings.temperature if temperature is None else temperature
        pieces = 0
        # every LLM backend of the engine is shared (rag.llm.SharedLLM); a bare one, as a
        # test may pass, never waits
        in_turn = getattr(llm, "stream_in_turn", llm.stream)
        stream = in_turn(messages, settings.llm_max_tokens, temp)
        try:
            for piece in stream:
                if isinstance(piece, Waiting):  # others' answers hold the model
                    yield {"type": "queued", "position": piece.position}
                    continue
                if not raw:
                    timings["first_token_s"] = time.perf_counter() - started
                raw += piece
                pieces += 1
                yield {"type": "token", "text": piece}
        finally:
            # a generator backend is closed at once when the caller abandons this answer,
            # so the LLM is freed; a backend may also return any plain iterator
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        if pieces > 1:
            generating = time.perf_counter() - started - timings["first_token_s"]
            timings["tokens_per_s"] = (pieces - 1) / max(generating, 1e-6)

    refused = weak or is_refusal(raw)
    final, fallback, extractive = raw, None, llm is None
    if llm is not None and not refused:
        fallback = unusable(raw, standalone, lang, passages)
        if fallback in ("echo", "off_type") and top_dense < settings.echo_refusal_min_dense:
            # the model found no answer and the passages are only loosely related
            refused, fallback = True, None
        elif fallback:
            final, extractive = extractive_answer(standalone, passages, similarity), True
    if extractive and not refused and off_type(final, standalone, _texts(passages)):
        # not even the best-matching sentences hold a number, name or time as asked
        refused, fallback = True, None
    sentences, citations = [], []
    if not refused:
        answer, sentences, citations = check_answer(final, passages)
        # Grounding guard: an answer with no sentence supported by any passage comes from
        # the model, not the articles (or echoes the prompt's example): refuse instead.
        refused = not any(s.supported for s in sentences)
    if refused:
        answer, sentences, citations = prompts.REFUSAL[lang], [], []
    timings["total_s"] = time.perf_counter() - started
    yield {
        "type": "done",
        "result": {
            "question": question,
            "standalone_question": standalone,
            "answer": answer,
            "raw_answer": raw,
            "refused": refused,
            "weak_evidence": weak,
            # why the LLM's answer was replaced by the extractive one: "echo" (it only
            # repeated the question or a headline), "language" (not the question's) or
            # "off_type" (not the kind of answer asked for, e.g. a date for an amount)
            "fallback": fallback,
            "citations": [c.to_dict() for c in citations],
            "unsupported": [s.text for s in sentences if not s.supported],
            "passages": [p.to_dict() for p in passages],
            "cited_numbers_raw": parse_markers(raw),
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "llm": getattr(llm, "name", None),
            "filters": applied.to_dict() if applied else None,
        },
    }


def answer(engine, question: str, history=None, use_llm: bool = True) -> dict:
    """The final result of ``ask`` (no streaming)."""
    result: dict = {}
    for event in ask(engine, question, history, use_llm):
        if event["type"] == "done":
            result = event["result"]
    return result
