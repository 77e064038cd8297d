"""When to refuse instead of answering: the evidence is too weak, or the LLM's answer
gave no answer over loosely related passages.

A ``Calibrator`` decides from the scores answering already has. The default is the rule
tuned on the development set (thresholds in ``rag.settings``); a fitted calibrator can
take its place through ``AnswerPipeline(calibrator=...)``.
"""

from __future__ import annotations

from typing import Protocol

from .settings import Settings


class Calibrator(Protocol):
    def weak_evidence(self, top_dense: float, coverage: float) -> bool:
        """Refuse before any LLM work: the best passage is far from the question
        (cosine ``top_dense``) and the corpus knows few of its words (``coverage``)."""
        ...

    def refuse_unusable(self, top_dense: float) -> bool:
        """An LLM answer that echoes or is of the wrong kind means "no answer here"
        rather than "a badly phrased answer" over passages this far from the question."""
        ...


class ThresholdCalibrator:
    """Fixed thresholds from the settings (calibrated on ``tests/data/dev.jsonl``)."""

    def __init__(self, settings: Settings):
        self.min_dense = settings.refusal_min_dense
        self.min_coverage = settings.refusal_min_coverage
        self.echo_min_dense = settings.echo_refusal_min_dense

    def weak_evidence(self, top_dense: float, coverage: float) -> bool:
        return top_dense < self.min_dense and coverage < self.min_coverage

    def refuse_unusable(self, top_dense: float) -> bool:
        return top_dense < self.echo_min_dense
