"""What answering knows about a question before it decides to answer or refuse.

Every signal is measured on the evidence and on the extractive answer (the evidence
sentences that best match the question), which costs milliseconds, so the decision is
made before any LLM work and is the same in both answer modes. ``rag.calibration`` turns
the signals into the decision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .answer_types import off_type
from .citations import Passage, strip_markers
from .evidence import Similarity
from .faithfulness import Vocabulary, missing_details, missing_terms_share
from .lexical import tokenize
from .questions import language


@dataclass(frozen=True)
class Signals:
    """One question's evidence, as numbers a calibrator can weigh."""

    top_dense: float  # cosine of the best passage to the question
    coverage: float  # share of the question's words the corpus knows (rag.lexical)
    missing_terms: float  # share of the question's content words in none of the passages
    missing_numbers: float  # its numbers and months in none of the passages (0, 1, 2+)
    missing_names: float  # its names in none of the passages (0, 1, 2+)
    answer_missing: float  # its names, numbers, months not in the extractive answer (0, 1, 2+)
    answer_cosine: float  # cosine of the extractive answer's best sentence to the question
    answer_overlap: float  # share of the question's words in the extractive answer
    off_type: float  # 1: the extractive answer is not the kind asked for (a bare date …)
    crosslingual: float  # 1: asked in another language than the passages are written in
    # With an LLM: its log-odds that the extractive answer answers exactly the question
    # (prompts.JUDGE_USER); None when no LLM was asked. Not one of ``names()``: the model
    # for answering without an LLM cannot weigh it.
    judgement: float | None = None

    @classmethod
    def names(cls) -> list[str]:
        """The signals measured without an LLM."""
        return [f.name for f in fields(cls) if f.name != JUDGEMENT]

    @classmethod
    def judged_names(cls) -> list[str]:
        """The signals with the LLM's judgement: what the model for answering with an
        LLM weighs."""
        return [*cls.names(), JUDGEMENT]

    def vector(self, features: list[str] | None = None) -> list[float]:
        """The values of ``features`` (default: ``names()``), in that order."""
        values = asdict(self)
        return [float(values[name]) for name in features or self.names()]


JUDGEMENT = "judgement"
# no sentence to judge: as sure a "no" as the LLM's surest (log-odds of about -20)
NOTHING_TO_JUDGE = -20.0


def measure(
    question: str,
    passages: list[Passage],
    coverage: float,
    candidate: str,
    similarity: Similarity,
) -> Signals:
    """The signals of ``question`` over ``passages`` with ``candidate``, the extractive
    answer, and ``similarity`` (sentence cosine to the question, cached per question)."""
    texts = [t for p in passages for t in (p.title, p.text)]
    vocabulary = Vocabulary(texts)
    missing = missing_details(question, vocabulary)
    sentences = [s for s in _sentences(candidate) if s]
    words = set(tokenize(question))
    answer_words = set(tokenize(strip_markers(candidate)))
    passage_lang = language(" ".join(p.text for p in passages[:1])) if passages else "ru"
    return Signals(
        top_dense=max((p.dense_score or 0.0 for p in passages), default=0.0),
        coverage=coverage,
        missing_terms=missing_terms_share(question, vocabulary),
        missing_numbers=float(min(sum(map(_is_time_or_number, missing)), 2)),
        missing_names=float(min(sum(not _is_time_or_number(w) for w in missing), 2)),
        answer_missing=float(min(len(missing_details(question, [candidate])), 2)),
        answer_cosine=max(similarity(sentences), default=0.0) if sentences else 0.0,
        answer_overlap=len(words & answer_words) / len(words) if words else 0.0,
        off_type=float(bool(candidate) and off_type(candidate, question, texts)),
        crosslingual=float(language(question) != passage_lang),
    )


def _is_time_or_number(word: str) -> bool:
    return word[:1].isdigit() or word[:1].islower()  # a number, or a month (not a name)


def _sentences(answer: str) -> list[str]:
    """The sentences of an extractive answer (each ends with its ``[n]`` marker)."""
    parts, current = [], []
    for token in answer.split(" "):
        current.append(token)
        if token.startswith("[") and token.rstrip(".!?…").endswith("]"):
            parts.append(strip_markers(" ".join(current)).strip())
            current = []
    if current:
        parts.append(strip_markers(" ".join(current)).strip())
    return parts
