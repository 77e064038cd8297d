"""The fitted answer-or-refuse model: fitting, its operating point, the file, the choice."""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import replace

import pytest

from rag.calibration import (
    SHIPPED,
    CalibrationError,
    FittedCalibrator,
    ThresholdCalibrator,
    fit,
    held_out_refusals,
    load_calibrator,
)
from rag.evaluate import UNANSWERABLE, load_questions
from rag.settings import PROJECT_ROOT, Settings
from rag.signals import Signals
from tests.conftest import run_cli


def _signals(rng: random.Random, answerable: bool) -> Signals:
    base = 0.65 if answerable else 0.4
    return Signals(
        top_dense=base + rng.gauss(0, 0.1),
        coverage=base + rng.gauss(0, 0.1),
        missing_terms=1 - base + rng.gauss(0, 0.1),
        missing_numbers=float(not answerable and rng.random() < 0.5),
        missing_names=float(not answerable and rng.random() < 0.5),
        answer_missing=float(rng.random() < (0.2 if answerable else 0.7)),
        answer_cosine=base + rng.gauss(0, 0.1),
        answer_overlap=base + rng.gauss(0, 0.1),
        off_type=0.0,
        crosslingual=0.0,
    )


@pytest.fixture()
def data():
    rng = random.Random(7)
    labels = [rng.random() < 0.6 for _ in range(300)]
    return [_signals(rng, a) for a in labels], labels


def test_fit_keeps_false_refusals_within_the_target_and_refuses_the_far(data):
    signals, labels = data
    fitted = fit(signals, labels, 0.05)
    answerable = [s for s, a in zip(signals, labels, strict=True) if a]
    refused = sum(fitted.refuse(s, extractive=True) for s in answerable)
    assert refused <= 0.05 * len(answerable)
    unanswerable = [s for s, a in zip(signals, labels, strict=True) if not a]
    assert sum(fitted.refuse(s, extractive=True) for s in unanswerable) > 0.5 * len(unanswerable)


def test_the_file_round_trips_and_a_foreign_one_is_named(tmp_path, data):
    settings = Settings.from_env(index_dir=tmp_path / "index")
    fitted = fit(*data, 0.05, meta={"embedding_model": settings.embedding_model})
    path = tmp_path / "index" / "calibration.json"
    fitted.save(path)
    again = FittedCalibrator.load(path, settings)
    assert again.probability(data[0][0]) == pytest.approx(fitted.probability(data[0][0]))
    fitted_settings = settings.replace(calibration="fitted")
    assert isinstance(load_calibrator(fitted_settings), FittedCalibrator)
    path.write_text('{"features": ["top_dense"]}', "utf-8")
    with pytest.raises(CalibrationError, match="rag calibrate"):
        load_calibrator(fitted_settings)
    path.write_text("not json", "utf-8")
    with pytest.raises(CalibrationError, match="cannot read"):
        load_calibrator(fitted_settings)


def test_a_file_fitted_again_takes_effect_with_the_next_answer(tmp_path, data):
    settings = Settings.from_env(index_dir=tmp_path, calibration="fitted")
    path = tmp_path / "calibration.json"
    meta = {"embedding_model": settings.embedding_model}
    fit(*data, 0.05, meta=meta).save(path)
    first = load_calibrator(settings)
    assert load_calibrator(settings).threshold == first.threshold  # read once, kept
    fit(*data, 0.30, meta=meta).save(path)
    later = path.stat().st_mtime_ns + 1_000_000_000  # a fit takes seconds, not microseconds
    os.utime(path, ns=(later, later))
    assert load_calibrator(settings).threshold > first.threshold


def test_a_fit_for_another_embedding_model_falls_back_to_the_rule(tmp_path, data, caplog):
    settings = Settings.from_env(index_dir=tmp_path, calibration="fitted")
    fit(*data, 0.05, meta={"embedding_model": "another-model"}).save(tmp_path / "calibration.json")
    with caplog.at_level(logging.WARNING):
        assert isinstance(load_calibrator(settings), ThresholdCalibrator)
    assert "another-model" in caplog.text


def test_the_shipped_fit_matches_the_signals():
    fitted = FittedCalibrator.load(SHIPPED, Settings.from_env())
    assert len(fitted.coef) == len(Signals.names()) and 0 < fitted.threshold < 1


def test_fitting_needs_both_kinds_of_questions(data):
    signals, _ = data
    with pytest.raises(CalibrationError, match="unanswerable"):
        fit(signals, [True] * len(signals), 0.05)


def test_a_detail_in_no_passage_refuses_an_unsure_question():
    """Between the threshold and ``missing_detail_refusal`` a question whose name or
    number is in none of the passages is refused; above it, or without one, it is not."""
    n = len(Signals.names())
    coef = [1.0 if name == "top_dense" else 0.0 for name in Signals.names()]
    fitted = FittedCalibrator([0.0] * n, [1.0] * n, coef, 0.0, threshold=0.4)
    plain = Signals(0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0)  # probability 0.5
    named, dated = replace(plain, missing_names=1.0), replace(plain, missing_numbers=1.0)
    for limit, refused in ((0.0, False), (0.6, True), (0.5, False)):
        fitted.missing_detail = limit
        assert fitted.refuse(named, extractive=True) is refused
        assert fitted.refuse(dated, extractive=False) is refused
        assert not fitted.refuse(plain, extractive=True)
    settings = Settings.from_env(missing_detail_refusal=0.5)
    assert FittedCalibrator.load(SHIPPED, settings).missing_detail == 0.5


def test_held_out_refusals_decide_each_question_with_models_fitted_without_it(data):
    signals, labels = data
    fitted = [i % 4 != 0 for i in range(len(signals))]  # a quarter is only checked
    decisions = held_out_refusals(signals, labels, 0.05, fitted=fitted, shuffles=2)
    assert [len(d) for d in decisions] == [2] * len(signals)
    answerable = [d for ds, a in zip(decisions, labels, strict=True) if a for d in ds]
    unanswerable = [d for ds, a in zip(decisions, labels, strict=True) if not a for d in ds]
    assert sum(unanswerable) / len(unanswerable) > 0.5
    assert sum(answerable) / len(answerable) < 0.2


def test_a_fold_without_one_kind_to_fit_on_decides_nothing(data):
    """Left out one at a time, the only unanswerable question leaves nothing of its kind to
    fit on: that fold is skipped instead of failing the whole estimate."""
    signals, labels = data
    answerable = [s for s, a in zip(signals, labels, strict=True) if a][:9]
    unanswerable = [s for s, a in zip(signals, labels, strict=True) if not a][:1]
    decisions = held_out_refusals(
        unanswerable + answerable, [False] + [True] * 9, 0.05, folds=10, shuffles=1
    )
    assert decisions[0] == [] and all(len(d) == 1 for d in decisions[1:])


def test_rag_calibrate_fits_an_archive_and_says_how_it_does_on_new_questions(
    built_engine, tmp_path
):
    """``rag calibrate`` on the default corpus: the file it writes loads as a fitted model,
    and it reports refusals on the questions it fitted and on ones left out of the fit."""
    questions = load_questions(PROJECT_ROOT / "tests" / "data" / "dev.jsonl")
    unanswerable = [q for q in questions if q["kind"] in UNANSWERABLE]
    chosen = unanswerable + [q for q in questions if q["kind"] not in UNANSWERABLE][:12]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in chosen), "utf-8")
    out = tmp_path / "calibration.json"

    done = run_cli(built_engine, "calibrate", str(path), "--out", str(out), "--json", "--no-llm")
    report = json.loads(done.stdout)
    assert report["questions"] == len(chosen) and report["file"] == str(out)
    for figures in (report, report["held_out"]):
        assert 0 <= figures["refusal"] <= 1 and 0 <= figures["false_refusal"] <= 1
    assert report["refusal"] > 0.5  # the fitted questions themselves
    fitted = FittedCalibrator.load(out, Settings.from_env())
    assert fitted.meta["fitted_on"] == ["mine.jsonl"]

    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in chosen[5:]), "utf-8")
    few_out = str(tmp_path / "few.json")
    done = run_cli(built_engine, "calibrate", str(few), "--out", few_out, "--no-llm")
    assert "too few questions of each kind" in done.stdout
