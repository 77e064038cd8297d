"""When to refuse instead of answering, decided from a question's signals (``rag.signals``).

The default is a logistic regression fitted on questions with known answers, both
answerable ones and ones the articles do not answer (near misses, absent topics); it
ships as ``rag/data/calibration.json`` and ``rag calibrate`` fits one on a user's own
archive. It refuses when the estimated chance that the articles answer the question is
below a threshold chosen on the same questions for a target rate of false refusals.
With an LLM a second model, fitted with the LLM's judgement of the quoted sentences as
one more signal, decides instead (``JudgedCalibrator``; ``calibration-judged.json`` next
to the first), when it was fitted for that LLM and that prompt.
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
from .signals import JUDGEMENT, Signals

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).parent / "data" / "calibration.json"
FILE_NAME = "calibration.json"  # a user's own fit, in the index folder


class CalibrationError(RagError, ValueError):
    """A calibration file that cannot be used, or questions that cannot be fitted."""


class Calibrator(Protocol):
    def needs_judgement(self, signals: Signals) -> bool:
        """The decision on ``signals`` depends on the LLM's judgement (``rag.signals``):
        ask the LLM for it first."""
        ...

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

    def needs_judgement(self, signals: Signals) -> bool:
        return False

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
    features: list[str] = field(default_factory=Signals.names)

    @property
    def weighs_judgement(self) -> bool:
        return JUDGEMENT in self.features

    def needs_judgement(self, signals: Signals) -> bool:
        return self.weighs_judgement

    def probability(self, signals: Signals) -> float:
        if self.weighs_judgement and signals.judgement is None:
            raise CalibrationError("this model weighs the LLM's judgement, which was not asked")
        z = self.intercept + sum(
            c * (x - m) / s
            for c, x, m, s in zip(
                self.coef, signals.vector(self.features), self.mean, self.scale, strict=True
            )
        )
        return 1.0 / (1.0 + math.exp(-z))

    def refuse(self, signals: Signals, extractive: bool) -> bool:
        return self.probability(signals) < self.threshold or self.refuses_missing(signals)

    def refuses_missing(self, signals: Signals) -> bool:
        """A name, number or date of the question is in no passage and the probability
        is below ``missing_detail`` (see the setting ``missing_detail_refusal``)."""
        absent = signals.missing_names + signals.missing_numbers > 0
        return absent and self.probability(signals) < self.missing_detail

    def refuse_unusable(self, top_dense: float) -> bool:
        return top_dense < self.echo_min_dense

    def extractive_stands_in(self, signals: Signals) -> bool:
        return self.probability(signals) >= self.stand_in

    def save(self, path: Path) -> None:
        data = {
            "features": self.features,
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
            data = _read(path)
            if data["features"] not in (Signals.names(), Signals.judged_names()):
                raise CalibrationError(
                    f"{path} was fitted on other signals; fit it again with `rag calibrate`"
                )
            return cls(
                mean=list(data["mean"]),
                scale=list(data["scale"]),
                coef=list(data["coef"]),
                intercept=float(data["intercept"]),
                threshold=float(data["threshold"]),
                echo_min_dense=settings.echo_refusal_min_dense,
                stand_in=settings.extractive_stand_in,
                missing_detail=settings.missing_detail_refusal,
                meta=dict(data.get("meta", {})),
                features=list(data["features"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, CalibrationError):
                raise
            raise CalibrationError(f"cannot read the calibration file {path}: {exc}") from None


@dataclass
class JudgedCalibrator:
    """With an LLM: ``judged``, fitted on the signals and the LLM's judgement, decides
    whether to refuse; ``plain``, the model over the signals alone, keeps the rules whose
    settings were set on its probabilities (a missing detail, the extractive stand-in)."""

    judged: FittedCalibrator
    plain: FittedCalibrator

    def needs_judgement(self, signals: Signals) -> bool:
        """Not when a missing detail refuses anyway: the LLM's prefill is saved."""
        return not self.plain.refuses_missing(signals)

    def refuse(self, signals: Signals, extractive: bool) -> bool:
        if self.plain.refuses_missing(signals):
            return True
        return self.judged.probability(signals) < self.judged.threshold

    def refuse_unusable(self, top_dense: float) -> bool:
        return self.plain.refuse_unusable(top_dense)

    def extractive_stands_in(self, signals: Signals) -> bool:
        return self.plain.extractive_stands_in(signals)


def calibration_path(settings: Settings) -> Path:
    """The setting's file, else a fit in the index folder, else the shipped one."""
    if settings.calibration_file:
        return settings.calibration_file
    own = settings.index_dir / FILE_NAME
    return own if own.exists() else SHIPPED


def judged_path(plain: Path) -> Path:
    """Where the model with the LLM's judgement sits: beside the model without it."""
    return plain.with_name(f"{plain.stem}-judged{plain.suffix}")


def load_calibrator(settings: Settings, llm=None) -> Calibrator:
    """The calibrator the settings ask for, with ``llm`` (None: answers without an LLM).

    A fitted file for another embedding model does not fit its cosines: then the
    hand-set rule, with a warning to fit one. With an LLM, the model that weighs its
    judgement when one was fitted for this LLM and this prompt, else the plain model."""
    if settings.calibration == "threshold":
        return ThresholdCalibrator(settings)
    path = calibration_path(settings)
    fitted = FittedCalibrator.load(path, settings)
    model = fitted.meta.get("embedding_model")
    if model and model != settings.embedding_model:
        _warn_once(
            "%s was fitted for the embedding model %s, not %s: refusing by the hand-set "
            "rule; run `rag calibrate QUESTIONS.jsonl` to fit your own",
            path,
            model,
            settings.embedding_model,
        )
        return ThresholdCalibrator(settings)
    if llm is None or not settings.llm_judge:
        return fitted
    judged = _judged_for(judged_path(path), settings, getattr(llm, "name", None))
    return fitted if judged is None else JudgedCalibrator(judged, fitted)


def _judged_for(path: Path, settings: Settings, llm_name: str | None) -> FittedCalibrator | None:
    """The model with the judgement at ``path``, if fitted for this LLM, prompt and
    embedding model; else None (deciding on the signals alone), saying why."""
    from .prompts import judge_prompt_id

    if not path.exists():
        return None
    judged = FittedCalibrator.load(path, settings)
    fitted_for = (
        judged.meta.get("llm"),
        judged.meta.get("judge_prompt"),
        judged.meta.get("embedding_model"),
    )
    if fitted_for == (llm_name, judge_prompt_id(), settings.embedding_model):
        return judged
    _warn_once(
        "%s was fitted for the LLM %s (judge prompt %s, embeddings %s), not %s: deciding "
        "without the LLM's judgement; run `rag calibrate QUESTIONS.jsonl` with this LLM to "
        "fit one",
        path,
        *fitted_for,
        llm_name,
    )
    return None


_files: dict[Path, tuple[tuple[int, int], dict]] = {}


def _read(path: Path) -> dict:
    """The JSON in ``path``, parsed again only when the file changes (a calibrator is
    loaded for every answer, so a re-fitted file takes effect with the next one)."""
    stat = path.stat()
    version = (stat.st_mtime_ns, stat.st_size)
    cached = _files.get(path)
    if cached is None or cached[0] != version:
        cached = _files[path] = (version, json.loads(path.read_text("utf-8")))
    return cached[1]


_warned: set[tuple] = set()


def _warn_once(message: str, *args) -> None:
    """A calibrator loads for every answer: each mismatch is logged once per process."""
    if args not in _warned:
        _warned.add(args)
        log.warning(message, *args)


def fit(
    signals: list[Signals],
    answerable: list[bool],
    false_refusal: float,
    meta: dict | None = None,
    weights: list[float] | None = None,
    features: list[str] | None = None,
) -> FittedCalibrator:
    """Fit P(answerable | signals) and set the threshold so that at most
    ``false_refusal`` of the answerable questions are refused. ``weights``: one per
    question (e.g. so that each corpus counts alike), answerable and unanswerable
    questions are balanced within them; ``features``: the signals weighed (default:
    those measured without an LLM)."""
    features = features or Signals.names()
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(set(answerable)) < 2:
        raise CalibrationError(
            "fitting needs answerable questions and unanswerable ones (kind 'unanswerable', "
            "'absent' or 'nearmiss')"
        )
    x = np.array([s.vector(features) for s in signals])
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
        features=list(features),
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
    features: list[str] | None = None,
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
                features=features,
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


def collect(
    pipeline, questions: list[dict], progress=None, judge: bool = False
) -> tuple[list[Signals], list[bool]]:
    """The signals of every question (``rag eval`` format) with ``pipeline`` (an
    ``AnswerPipeline``), with its LLM's judgement if ``judge``, and whether each is
    answerable by its ``kind``."""
    from .evaluate import UNANSWERABLE

    signals, answerable = [], []
    for item in questions:
        signals.append(pipeline.signals(item["q"], item.get("history"), judge=judge))
        answerable.append(item["kind"] not in UNANSWERABLE)
        if progress is not None:
            progress()
    return signals, answerable
