"""When to refuse instead of answering, decided from a question's signals (``rag.signals``).

The default is a logistic regression fitted on questions with known answers, both
answerable ones and ones the articles do not answer (near misses, absent topics); it
ships as ``rag/data/calibration.json`` and ``rag calibrate`` fits one on a user's own
archive. It refuses when the estimated chance that the articles answer the question is
below a threshold chosen on the same questions for a target rate of false refusals.
``ThresholdCalibrator`` keeps the earlier hand-set rule, for comparison.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .errors import RagError
from .settings import Settings
from .signals import Signals

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).parent / "data" / "calibration.json"
FILE_NAME = "calibration.json"  # a user's own fit, in the index folder


class CalibrationError(RagError, ValueError):
    """A calibration file that cannot be used, or questions that cannot be fitted."""


class Calibrator(Protocol):
    def refuse(self, signals: Signals, extractive: bool) -> bool:
        """Refuse before any LLM work; ``extractive``: the extractive answer is the one
        that would be shown."""
        ...

    def refuse_unusable(self, top_dense: float) -> bool:
        """An LLM answer that echoes or is of the wrong kind means "no answer here"
        rather than "a badly phrased answer" over passages this far from the question."""
        ...

    def extractive_stands_in(self, signals: Signals) -> bool:
        """The signals are sure enough that the articles answer for the extractive answer
        to replace an LLM answer that refuses or that its passages do not support."""
        ...


class ThresholdCalibrator:
    """The hand-set rule (thresholds in the settings, set on ``tests/data/dev.jsonl``):
    refuse when the best passage is far and the corpus knows few of the question's
    words, or when an extractive answer is not the kind asked for."""

    def __init__(self, settings: Settings):
        self.min_dense = settings.refusal_min_dense
        self.min_coverage = settings.refusal_min_coverage
        self.echo_min_dense = settings.echo_refusal_min_dense

    def refuse(self, signals: Signals, extractive: bool) -> bool:
        weak = signals.top_dense < self.min_dense and signals.coverage < self.min_coverage
        return weak or (extractive and bool(signals.off_type))

    def refuse_unusable(self, top_dense: float) -> bool:
        return top_dense < self.echo_min_dense

    def extractive_stands_in(self, signals: Signals) -> bool:
        return False  # the rule has no confidence to go by


@dataclass
class FittedCalibrator:
    """Logistic regression over the standardised signals: P(the articles answer)."""

    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float
    echo_min_dense: float = 0.5
    stand_in: float = 1.0  # from this probability the extractive answer replaces the LLM's
    missing_detail: float = 0.0  # below this probability a detail in no passage refuses
    meta: dict = field(default_factory=dict)

    def probability(self, signals: Signals) -> float:
        z = self.intercept + sum(
            c * (x - m) / s
            for c, x, m, s in zip(self.coef, signals.vector(), self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-z))

    def refuse(self, signals: Signals, extractive: bool) -> bool:
        probability = self.probability(signals)
        absent = signals.missing_names + signals.missing_numbers > 0
        return probability < self.threshold or (absent and probability < self.missing_detail)

    def refuse_unusable(self, top_dense: float) -> bool:
        return top_dense < self.echo_min_dense

    def extractive_stands_in(self, signals: Signals) -> bool:
        return self.probability(signals) >= self.stand_in

    def save(self, path: Path) -> None:
        data = {
            "features": Signals.names(),
            "mean": self.mean,
            "scale": self.scale,
            "coef": self.coef,
            "intercept": self.intercept,
            "threshold": self.threshold,
            "meta": self.meta,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", "utf-8")

    @classmethod
    def load(cls, path: Path, settings: Settings) -> FittedCalibrator:
        try:
            data = json.loads(path.read_text("utf-8"))
            if data["features"] != Signals.names():
                raise CalibrationError(
                    f"{path} was fitted on other signals; fit it again with `rag calibrate`"
                )
            return cls(
                mean=data["mean"],
                scale=data["scale"],
                coef=data["coef"],
                intercept=float(data["intercept"]),
                threshold=float(data["threshold"]),
                echo_min_dense=settings.echo_refusal_min_dense,
                stand_in=settings.extractive_stand_in,
                missing_detail=settings.missing_detail_refusal,
                meta=data.get("meta", {}),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, CalibrationError):
                raise
            raise CalibrationError(f"cannot read the calibration file {path}: {exc}") from None


def calibration_path(settings: Settings) -> Path:
    """The setting's file, else a fit in the index folder, else the shipped one."""
    if settings.calibration_file:
        return settings.calibration_file
    own = settings.index_dir / FILE_NAME
    return own if own.exists() else SHIPPED


def load_calibrator(settings: Settings) -> Calibrator:
    """The calibrator the settings ask for. A fitted file for another embedding model
    does not fit its cosines: then the hand-set rule, with a warning to fit one."""
    if settings.calibration == "threshold":
        return ThresholdCalibrator(settings)
    path = calibration_path(settings)
    fitted = FittedCalibrator.load(path, settings)
    model = fitted.meta.get("embedding_model")
    if model and model != settings.embedding_model:
        log.warning(
            "%s was fitted for the embedding model %s, not %s: refusing by the hand-set "
            "rule; run `rag calibrate QUESTIONS.jsonl` to fit your own",
            path,
            model,
            settings.embedding_model,
        )
        return ThresholdCalibrator(settings)
    return fitted


def fit(
    signals: list[Signals],
    answerable: list[bool],
    false_refusal: float,
    meta: dict | None = None,
    weights: list[float] | None = None,
) -> FittedCalibrator:
    """Fit P(answerable | signals) and set the threshold so that at most
    ``false_refusal`` of the answerable questions are refused. ``weights``: one per
    question (e.g. so that each corpus counts alike), answerable and unanswerable
    questions are balanced within them."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(set(answerable)) < 2:
        raise CalibrationError(
            "fitting needs answerable questions and unanswerable ones (kind 'unanswerable', "
            "'absent' or 'nearmiss')"
        )
    x = np.array([s.vector() for s in signals])
    y = np.array(answerable, dtype=int)
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    for label in (0, 1):  # each class carries half the total weight
        w[y == label] *= w.sum() / (2 * w[y == label].sum())
    w *= len(w) / w.sum()  # mean 1: the regularisation does not depend on the scale
    # strong regularisation: in 5-fold cross-validation on the calibration parts the
    # ranking (AUC) improved from C=3 to C=0.01 and levelled off (docs/calibration.md)
    model = LogisticRegression(C=0.01, max_iter=1000)
    model.fit((x - scaler.mean_) / scale, y, sample_weight=w)
    fitted = FittedCalibrator(
        mean=[float(v) for v in scaler.mean_],
        scale=[float(v) for v in scale],
        coef=[float(v) for v in model.coef_[0]],
        intercept=float(model.intercept_[0]),
        threshold=0.0,
        meta=dict(meta or {}),
    )
    fitted.threshold = operating_threshold(
        [fitted.probability(s) for s, a in zip(signals, answerable, strict=True) if a],
        false_refusal,
    )
    fitted.meta.update(target_false_refusal=false_refusal, n=len(signals))
    return fitted


def held_out_refusals(
    signals: list[Signals],
    answerable: list[bool],
    false_refusal: float,
    weights: list[float] | None = None,
    fitted: list[bool] | None = None,
    folds: int = 5,
    shuffles: int = 3,
) -> list[list[bool]]:
    """For every question, whether models fitted without it refuse it: ``folds``-fold
    cross-validation, repeated ``shuffles`` times with fixed seeds. Only questions marked
    in ``fitted`` (default: all) are fitted on. What a fit does on new questions: the
    threshold meets its target on the questions it was set on, not necessarily on others."""
    decisions: list[list[bool]] = [[] for _ in signals]
    for seed in range(shuffles):
        order = list(range(len(signals)))
        random.Random(seed).shuffle(order)
        for fold in range(folds):
            held = set(order[fold::folds])
            train = [
                i for i in range(len(signals)) if i not in held and (fitted is None or fitted[i])
            ]
            if len({answerable[i] for i in train}) < 2:
                continue  # the shuffle put every question of one kind in this fold
            model = fit(
                [signals[i] for i in train],
                [answerable[i] for i in train],
                false_refusal,
                weights=None if weights is None else [weights[i] for i in train],
            )
            for i in held:
                decisions[i].append(model.refuse(signals[i], extractive=True))
    return decisions


def operating_threshold(answerable_probabilities: list[float], false_refusal: float) -> float:
    """The highest threshold that refuses at most ``false_refusal`` of these."""
    ranked = sorted(answerable_probabilities)
    allowed = math.floor(false_refusal * len(ranked))  # may be refused
    if allowed >= len(ranked):
        return 1.0
    return ranked[allowed]


def curve(
    probabilities: list[float], answerable: list[bool], thresholds: list[float]
) -> list[dict]:
    """Refusal of unanswerable and of answerable questions at each threshold."""
    pos = [p for p, a in zip(probabilities, answerable, strict=True) if a]
    neg = [p for p, a in zip(probabilities, answerable, strict=True) if not a]
    return [
        {
            "threshold": t,
            "refusal": sum(p < t for p in neg) / len(neg) if neg else None,
            "false_refusal": sum(p < t for p in pos) / len(pos) if pos else None,
        }
        for t in thresholds
    ]


def collect(pipeline, questions: list[dict], progress=None) -> tuple[list[Signals], list[bool]]:
    """The signals of every question (``rag eval`` format) with ``pipeline`` (an
    ``AnswerPipeline``), and whether each is answerable by its ``kind``."""
    from .evaluate import UNANSWERABLE

    signals, answerable = [], []
    for item in questions:
        signals.append(pipeline.signals(item["q"], item.get("history")))
        answerable.append(item["kind"] not in UNANSWERABLE)
        if progress is not None:
            progress()
    return signals, answerable
