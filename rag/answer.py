"""Answer a question from retrieved passages, as one stream of typed events.

``AnswerPipeline.run`` yields, in order: the standalone question (for follow-ups), the
evidence (before any LLM work), answer tokens as they come, and a final result with
verified citations and timings (``rag.events``). Between the evidence and the answer,
with an LLM and a decision model fitted for it, the LLM judges whether the quoted
sentences answer the question (one prefill, in line with other answers). A follow-up
that the LLM rewrites first gets a provisional evidence event before the rewrite, so
that passages show within a second. The pipeline is made from its parts (retriever,
embedder, LLM, calibrator) and calls only them; ``ask`` builds it from an ``Engine`` and
yields the events as dicts, which the UI, the API, the CLI and the benchmarks consume.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from difflib import SequenceMatcher

from . import prompts
from .calibration import Calibrator, load_calibrator
from .checks import is_refusal, unusable
from .citations import Citation, Passage, Sentence, check_answer, parse_markers, strip_markers
from .events import AnswerResult, Done, Draft, Event, Evidence, Queued, Standalone, Token
from .evidence import (
    Similarity,
    approx_tokens,
    build_passages,
    evidence_window,
    fit_budget,
    sentence_similarity,
)
from .extractive import extractive_answer
from .faithfulness import missing_details
from .followup import contextual_query, needs_rewrite, standalone_question
from .lexical import tokenize
from .llm import Waiting, waited
from .questions import QuestionError, clean_question, language
from .retrieve import Hit
from .settings import Settings
from .signals import NOTHING_TO_JUDGE, Signals, measure
from .timefilter import Filters, filters_for, from_question, newest_date

__all__ = ["AnswerPipeline", "Found", "QuestionError", "answer", "ask", "clean_question"]


@dataclass
class Found:
    """What a search for one query gives answering: the hits, the passages cut from them
    for the LLM, and the sentence similarity to the query (shared with the answer)."""

    hits: list[Hit]
    passages: list[Passage]
    similarity: Similarity


class AnswerPipeline:
    """Answers questions with the parts it is given: ``retriever`` (search, query vectors,
    the index), ``embedder`` (sentence vectors), ``llm`` (None: extractive answers, no
    rewrite) and ``calibrator`` (when to refuse; by default the one the settings name)."""

    def __init__(
        self,
        settings: Settings,
        retriever,
        embedder,
        llm=None,
        calibrator: Calibrator | None = None,
    ):
        self.settings = settings
        self.retriever = retriever
        self.embedder = embedder
        self.llm = llm
        self.calibrator = calibrator or load_calibrator(settings, llm)
        self.count_tokens = llm.count_tokens if llm is not None else approx_tokens

    def evidence(
        self,
        query: str,
        k: int | None = None,
        mode: str | None = None,
        filters: Filters | None = None,
        count_tokens=None,
    ) -> Found:
        """The hits for ``query`` and the passages cut from them for the LLM: the
        evidence answering shows, without running the LLM (``rag eval`` scores it)."""
        settings = self.settings
        hits = self.retriever.search(
            query, k=k or settings.context_passages, mode=mode, filters=filters
        )
        similarity = sentence_similarity(
            self.retriever.embed_query, self.embedder.embed_documents, query
        )
        budgets = (settings.top_passage_tokens, settings.passage_tokens)
        passages = build_passages(
            hits, query, budgets, count_tokens or self.count_tokens, similarity
        )
        return Found(hits, passages, similarity)

    def assess(self, question: str, found: Found) -> tuple[Signals, str]:
        """The signals for answering ``question`` from ``found`` (without the LLM's
        judgement) and the extractive answer they were measured on."""
        candidate = self._extractive(question, found.passages, found.similarity)
        coverage = self.retriever.index.lexical_coverage(question)
        signals = measure(question, found.passages, coverage, candidate, found.similarity)
        return signals, candidate

    def judgement(self, question: str, candidate: str) -> Generator[Waiting, None, float]:
        """The LLM's judgement whether ``candidate``'s sentences (the extractive answer)
        answer exactly ``question`` (``rag.prompts.JUDGE_USER``), as the generator's
        return value, after ``Waiting`` while others' answers hold the LLM."""
        text = strip_markers(candidate).strip()
        if not text:
            return NOTHING_TO_JUDGE
        messages = prompts.judge_messages(text, question)
        words = (messages, prompts.JUDGE_YES, prompts.JUDGE_NO)
        in_turn = getattr(self.llm, "judge_in_turn", None)  # a bare backend never waits
        if in_turn is None:
            return self.llm.judge(*words)
        return (yield from in_turn(*words))

    def signals(
        self, question: str, history=None, filters: Filters | None = None, judge: bool = False
    ) -> Signals:
        """The signals the decision to answer ``question`` is made on (``rag calibrate``
        fits on them), with the LLM's judgement if ``judge``."""
        return self.judged(question, history, filters, judge)[0]

    def plain_standalone(self, question: str, history=None) -> str:
        """``question`` cleaned and, as a follow-up, joined to its ``history`` without the
        LLM's rewrite: the question the decision's signals are measured for (``judged``),
        so the same with any LLM or none."""
        question = clean_question(question, self.settings.max_question_chars)
        return standalone_question(question, history or [], self.settings.history_turns, None)

    def judged(
        self, question: str, history=None, filters: Filters | None = None, judge: bool = False
    ) -> tuple[Signals, str, str]:
        """``signals`` with the extractive answer they were measured on and the
        standalone question (a follow-up with its history, not rewritten by the LLM)
        they were measured for."""
        question = clean_question(question, self.settings.max_question_chars)
        applied = filters_for(question, self.retriever.index.manifest.get("documents", {}), filters)
        standalone = self.plain_standalone(question, history)
        signals, candidate = self.assess(standalone, self.evidence(standalone, filters=applied))
        if judge:
            asked = self.judgement(standalone, candidate)
            signals = replace(signals, judgement=waited(asked))
        return signals, candidate, standalone

    def run(
        self,
        question: str,
        history: list[tuple[str, str]] | None = None,
        k: int | None = None,
        mode: str | None = None,
        temperature: float | None = None,
        filters: Filters | None = None,
        question_filters: bool = True,
    ) -> Iterator[Event]:
        """Stream the answer to ``question`` as events (see module docstring).

        ``filters`` limit the articles; a time expression in the question adds to them
        (unless ``question_filters`` is False: the reader removed it), and the result's
        ``filters`` says what was applied."""
        settings, llm = self.settings, self.llm
        history = [(u, a) for u, a in (history or [])][-settings.history_turns :]
        question = clean_question(question, settings.max_question_chars)
        lang = language(question)
        index = self.retriever.index  # loading the index is not part of answering
        started = time.perf_counter()
        timings: dict[str, float] = {}
        documents = index.manifest.get("documents", {})
        applied = filters_for(question, documents, filters, question_filters)

        if llm is not None and needs_rewrite(settings.history_turns, question, history):
            # The LLM rewrite of a follow-up takes seconds: meanwhile show what the
            # follow-up and the previous question find together (the answer uses the
            # rewrite's passages).
            early = self.evidence(contextual_query(question, history), k, mode, applied)
            timings["evidence_s"] = time.perf_counter() - started
            yield Evidence(early.passages, provisional=True)

        standalone = standalone_question(question, history, settings.history_turns, llm)
        timings["rewrite_s"] = time.perf_counter() - started
        yield Standalone(standalone)

        found = self.evidence(standalone, k, mode, applied)
        passages = found.passages
        timings.setdefault("evidence_s", time.perf_counter() - started)  # first shown
        timings["answer_evidence_s"] = time.perf_counter() - started
        yield Evidence(passages, provisional=False)

        decided_on = standalone if question_filters else _without_time(standalone, documents)
        signals, candidate = self.assess(decided_on, found)
        if llm is not None and passages and self.calibrator.needs_judgement(signals):
            signals = yield from self._judge(decided_on, candidate, signals, started, timings)
        weak = not passages or self.calibrator.refuse(signals, extractive=llm is None)
        # "quote": the LLM only decides unsure questions and adds a lead to the sentences
        quote = llm is not None and settings.answer_mode == "quote" and not weak
        drafted = False
        raw = ""
        if weak:
            raw = _refusal(decided_on, lang, found.passages)
            yield Token(raw)
        elif llm is None:
            raw = candidate
            yield Token(raw)
        else:
            if quote and self._stand_in(weak, signals):
                # sure the articles answer: show their sentences now, the LLM's lead later
                draft = self._quoted(candidate, "", found.passages)
                if draft is not None:
                    drafted = True
                    timings["shown_s"] = time.perf_counter() - started
                    yield Token(draft[0])
                    yield Draft(
                        self._result(question, standalone, draft, found, signals, timings, applied)
                    )
            raw, passages = yield from self._ask_llm(
                question, standalone, history, passages, temperature, started, timings, quote
            )

        refused, fallback, final = self._review(
            raw, weak, standalone, lang, passages, signals, found.similarity
        )
        timings["decided_s"] = time.perf_counter() - started
        sentences, citations = [], []
        if not refused:
            answer_text, sentences, citations = check_answer(final, passages)
            # Grounding guard: an answer with no sentence supported by any passage comes
            # from the model, not the articles (or echoes the prompt's example): refuse.
            refused = not any(s.supported for s in sentences)
            if refused and fallback is None and self._stand_in(weak, signals):
                fallback = "unsupported"
                final = self._extractive(standalone, passages, found.similarity)
                answer_text, sentences, citations = check_answer(final, passages)
                refused = not any(s.supported for s in sentences)
        if quote and not refused:
            lead = "" if fallback else _lead(sentences, candidate, passages, settings.quote_lead)
            quoted = self._quoted(candidate, lead, found.passages)
            refused = quoted is None
            if quoted is not None:
                answer_text, sentences, citations = quoted
                passages = found.passages
        if refused:
            answer_text, sentences, citations = _refusal(decided_on, lang, found.passages), [], []
        if quote and not drafted:
            yield Token(answer_text)
        timings["total_s"] = time.perf_counter() - started
        timings.setdefault("shown_s", timings["total_s"])
        checked = (answer_text, sentences, citations)
        result = self._result(question, standalone, checked, found, signals, timings, applied)
        yield Done(
            replace(
                result,
                raw_answer=raw,
                refused=refused,
                weak_evidence=weak,
                fallback=fallback,
                passages=passages,
                cited_numbers_raw=parse_markers(raw),
            )
        )

    def _judge(
        self, question: str, candidate: str, signals: Signals, started: float, timings: dict
    ) -> Generator[Event, None, Signals]:
        """``signals`` with the LLM's judgement, yielding its place in line meanwhile."""
        asking = self.judgement(question, candidate)
        try:
            while True:
                try:
                    waiting = next(asking)
                except StopIteration as done:
                    timings["judged_s"] = time.perf_counter() - started
                    return replace(signals, judgement=done.value)
                yield Queued(waiting.position)
        finally:
            asking.close()  # abandoned while waiting (Stop): leave the line at once

    def _ask_llm(
        self,
        question: str,
        standalone: str,
        history: list[tuple[str, str]],
        passages: list[Passage],
        temperature: float | None,
        started: float,
        timings: dict,
        quiet: bool,
    ) -> Generator[Event, None, tuple[str, list[Passage]]]:
        """Run the LLM on the passages that fit its context, yielding its tokens (unless
        ``quiet``: a quote-mode answer shows its own text) and its place in line; returns
        its answer and the passages it read."""
        settings = self.settings
        # With the conversation in the prompt the LLM reads the question as asked;
        # without it, the rewritten question carries the context.
        turns = settings.answer_history_turns
        prompt_history = history[-turns:] if turns else []
        asked = question if prompt_history else standalone
        passages, kept_history = fit_budget(
            self.llm, passages, asked, prompt_history, settings.llm_max_tokens
        )
        messages = prompts.answer_messages(
            [(p.title, p.text) for p in passages], asked, kept_history
        )
        temp = settings.temperature if temperature is None else temperature
        raw = ""
        for piece in self._generate(messages, temp, started, timings):
            if isinstance(piece, Waiting):  # others' answers hold the model
                yield Queued(piece.position)
                continue
            raw += piece
            if not quiet:
                yield Token(piece)
        return raw, passages

    def _quoted(
        self, candidate: str, lead: str, passages: list[Passage]
    ) -> tuple[str, list[Sentence], list[Citation]] | None:
        """The quote-mode answer: ``lead`` (may be empty) above the article sentences of
        ``candidate``, checked against ``passages``; None when no sentence is supported."""
        checked = check_answer(f"{lead} {candidate}".strip(), passages)
        return checked if any(s.supported for s in checked[1]) else None

    def _result(
        self,
        question: str,
        standalone: str,
        checked: tuple[str, list[Sentence], list[Citation]],
        found: Found,
        signals: Signals,
        timings: dict[str, float],
        filters: Filters | None,
    ) -> AnswerResult:
        """An answered result from a checked answer; ``Done`` replaces what differs."""
        answer_text, sentences, citations = checked
        return AnswerResult(
            question=question,
            standalone_question=standalone,
            answer=answer_text,
            raw_answer="",
            refused=False,
            weak_evidence=False,
            signals=signals,
            fallback=None,
            citations=citations,
            unsupported=[s.text for s in sentences if not s.supported],
            passages=found.passages,
            cited_numbers_raw=[],
            timings=dict(timings),
            llm=getattr(self.llm, "name", None),
            filters=filters,
        )

    def _stand_in(self, weak: bool, signals: Signals) -> bool:
        """Whether the extractive answer replaces an LLM answer that refuses or is
        unsupported: the question passed the decision, and the signals are sure."""
        return self.llm is not None and not weak and self.calibrator.extractive_stands_in(signals)

    def _extractive(self, question: str, passages: list[Passage], similarity: Similarity) -> str:
        """The extractive answer from ``passages``, each narrowed to its best window."""
        return extractive_answer(question, self._narrow(passages, question), similarity)

    def _narrow(self, passages: list[Passage], question: str) -> list[Passage]:
        """Each passage cut to its best ``extractive_tokens`` window, for the extractive
        answer: its two best sentences come from near the best match, as before the
        best passage was given whole (on a whole article part a sentence on the topic
        but not the asked detail, with a number, outranked the answer or the refusal)."""
        words = set(tokenize(question))
        narrowed = []
        for p in passages:
            if not words & set(tokenize(p.text)):  # ranked by similarity: kept whole
                narrowed.append(p)
                continue
            window = evidence_window(
                p, question, self.settings.extractive_tokens, approx_tokens, grow=True
            )
            if window is not None:
                start, end, text = window
                narrowed.append(replace(p, start=start, end=end, text=text))
        return narrowed or passages

    def _generate(
        self, messages: list[dict], temperature: float, started: float, timings: dict
    ) -> Iterator[str | Waiting]:
        """The LLM's answer, piece by piece, timing the first token and the rate; before
        it, ``Waiting`` while others' answers hold the model (a shared backend's line)."""
        pieces, text = 0, ""
        # the engine's backend is shared (rag.llm.SharedLLM); a bare one never waits
        in_turn = getattr(self.llm, "stream_in_turn", self.llm.stream)
        stream = in_turn(messages, self.settings.llm_max_tokens, temperature)
        try:
            for piece in stream:
                if isinstance(piece, Waiting):
                    yield piece
                    continue
                if not text:
                    timings["first_token_s"] = time.perf_counter() - started
                text += piece
                pieces += 1
                yield piece
        finally:
            # a generator backend is closed at once when the caller abandons this answer,
            # so the LLM is freed; a backend may also return any plain iterator
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        if pieces > 1:
            generating = time.perf_counter() - started - timings["first_token_s"]
            timings["tokens_per_s"] = (pieces - 1) / max(generating, 1e-6)

    def _review(
        self,
        raw: str,
        weak: bool,
        question: str,
        lang: str,
        passages: list[Passage],
        signals: Signals,
        similarity: Similarity,
    ) -> tuple[bool, str | None, str]:
        """(refused, fallback, the answer to check): an LLM answer that is unusable gives
        way to the extractive one, or to the refusal when the calibrator reads it as "no
        answer here" (or would refuse the extractive answer)."""
        refused = weak or is_refusal(raw)
        if refused and self._stand_in(weak, signals):  # the LLM found none; the signals did
            return False, "llm_refusal", self._extractive(question, passages, similarity)
        if self.llm is None or refused:
            return refused, None, raw
        fallback = unusable(raw, question, lang, passages)
        if not fallback:
            return False, None, raw
        if fallback in ("echo", "off_type") and self.calibrator.refuse_unusable(signals.top_dense):
            # the model found no answer and the passages are only loosely related
            return True, None, raw
        if self.calibrator.refuse(signals, extractive=True):
            return True, None, raw
        return False, fallback, self._extractive(question, passages, similarity)


def _refusal(question: str, lang: str, passages: list[Passage]) -> str:
    """The refusal, naming the question's details (names, numbers, dates) that none of
    ``passages`` contains: the usual reason, and what the reader could ask differently."""
    texts = [t for p in passages for t in (p.title, p.text)]
    absent = missing_details(question, texts) if texts else []
    if not absent:
        return prompts.REFUSAL[lang]
    quoted = ", ".join(f"«{d}»" if lang == "ru" else f"“{d}”" for d in absent)
    return f"{prompts.REFUSAL[lang]} {prompts.ABSENT_DETAILS[lang].format(details=quoted)}"


def _lead(sentences: list[Sentence], quoted: str, passages: list[Passage], rule: str) -> str:
    """The LLM answer's first sentence, with its markers, as a lead above the quoted
    article sentences: only when the support check passed it and it says something the
    quoted sentences do not (a word they lack). ``rule`` "written" also drops a lead
    that copies another article sentence: the ranking chose the quoted ones for the
    question, a copied one is most often beside it; "off": no lead."""
    if rule == "off" or not sentences or not sentences[0].supported:
        return ""
    first = sentences[0]
    words = tokenize(first.text)
    if set(words) <= set(tokenize(quoted)):
        return ""
    if rule == "written" and _copied(words, passages):
        return ""
    return first.marked()


def _copied(words: list[str], passages: list[Passage]) -> bool:
    """Whether ``words`` (a sentence's, in order) are mostly one run of a passage's
    words: 80 % of them, at least five, in a row. A short written answer ("Около 40
    боевиков") is not a copy."""
    if len(words) < 5:
        return False
    for passage in passages:
        match = SequenceMatcher(None, words, tokenize(passage.text), autojunk=False)
        if match.find_longest_match().size >= 0.8 * len(words):
            return True
    return False


def _without_time(question: str, documents: dict) -> str:
    """``question`` without its time expression, for the answer-or-refuse decision when
    the reader removed that expression: its year then asks nothing of the passages (kept,
    the decision would take it for a detail the articles lack, as in a near miss)."""
    found = from_question(question, newest_date(documents))
    if found is None:
        return question
    return " ".join(question.replace(found.expression, " ", 1).split())


def ask(
    engine,
    question: str,
    history: list[tuple[str, str]] | None = None,
    use_llm: bool = True,
    k: int | None = None,
    mode: str | None = None,
    temperature: float | None = None,
    filters: Filters | None = None,
    question_filters: bool = True,
    answer_mode: str | None = None,
) -> Iterator[dict]:
    """The events of ``engine``'s pipeline for ``question``, as dicts (see ``rag.events``).
    A question that cannot be asked fails before any model loads; ``question_filters=False``
    ignores a time expression in the question; ``answer_mode`` overrides the setting."""
    clean_question(question, engine.settings.max_question_chars)
    pipeline = engine.pipeline(use_llm, answer_mode)
    for event in pipeline.run(question, history, k, mode, temperature, filters, question_filters):
        yield event.to_dict()


def answer(engine, question: str, history=None, use_llm: bool = True) -> dict:
    """The final result of ``ask`` (no streaming)."""
    result: dict = {}
    for event in ask(engine, question, history, use_llm):
        if event["type"] == "done":
            result = event["result"]
    return result
