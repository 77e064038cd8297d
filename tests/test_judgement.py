"""The LLM's judgement of the quoted sentences as a signal of the answer-or-refuse
decision: asked before anything is shown, in line with the answers, read from llama.cpp's
logits or a server's top_logprobs, weighed only by a model fitted for that LLM and prompt,
and fitted by ``rag calibrate``. A server that cannot judge is an error, not a refusal."""

from __future__ import annotations

import json
import logging
import math
import random
import threading
from dataclasses import replace

import numpy as np
import pytest

from rag import prompts
from rag.answer import AnswerPipeline
from rag.calibration import (
    SHIPPED,
    CalibrationError,
    FittedCalibrator,
    JudgedCalibrator,
    fit,
    judged_path,
    load_calibrator,
)
from rag.engine import Engine
from rag.evaluate import UNANSWERABLE, load_questions
from rag.llm import LlamaCppLLM, LLMError, OpenAICompatibleLLM, SharedLLM, SlotQueue, Waiting
from rag.models import DEFAULT_MODELS, MODELS
from rag.settings import PROJECT_ROOT, Settings
from rag.signals import Signals
from tests import fault_llm
from tests.conftest import run_cli
from tests.fake_llm import ScriptedLLM

QUESTION = "Сколько терактов предотвращено с 2014 года?"
WITH_JUDGEMENT = Signals.judged_names()


def _by_judgement() -> FittedCalibrator:
    """A judged model that weighs the judgement alone: P = sigmoid(judgement), refusing
    below 0.5, i.e. when the LLM leans to "no"."""
    n = len(WITH_JUDGEMENT)
    return FittedCalibrator(
        [0.0] * n, [1.0] * n, [0.0] * (n - 1) + [1.0], 0.0, 0.5, features=WITH_JUDGEMENT
    )


def _pipeline(built_engine, llm, **overrides) -> AnswerPipeline:
    settings = built_engine.settings.replace(**overrides)
    plain = FittedCalibrator.load(SHIPPED, settings)
    calibrator = JudgedCalibrator(_by_judgement(), plain)
    return AnswerPipeline(settings, built_engine.retriever, built_engine.embedder, llm, calibrator)


def _run(pipeline: AnswerPipeline, question: str = QUESTION) -> list:
    return list(pipeline.run(question))


@pytest.mark.parametrize("answer_mode", ["quote", "llm"])
def test_the_llms_no_refuses_before_any_answer_and_its_yes_lets_it_through(
    built_engine, answer_mode
):
    refusing = ScriptedLLM("Спецслужбы предотвратили 11 терактов [1].", judgement=-4.0)
    events = _run(_pipeline(built_engine, refusing, answer_mode=answer_mode))
    done = events[-1].result
    assert done.refused and refusing.prompts == []  # no answer was generated
    assert done.signals.judgement == -4.0 and "judged_s" in done.timings
    assert "draft" not in [e.to_dict()["type"] for e in events]
    # the LLM judged the quoted sentences (the extractive answer) for the question
    judged = refusing.judged[0]
    assert judged[0]["content"] == prompts.JUDGE_SYSTEM
    assert QUESTION in judged[1]["content"] and "11" in judged[1]["content"]

    answering = ScriptedLLM("Спецслужбы предотвратили 11 терактов [1].", judgement=4.0)
    done = _run(_pipeline(built_engine, answering, answer_mode=answer_mode))[-1].result
    assert not done.refused and "11" in done.answer and done.citations
    assert len(answering.judged) == 1 and done.signals.judgement == 4.0


def test_without_a_judged_model_the_llm_is_not_asked(built_engine):
    llm = ScriptedLLM("Спецслужбы предотвратили 11 терактов [1].", judgement=-4.0)
    plain = FittedCalibrator.load(SHIPPED, built_engine.settings)
    pipeline = AnswerPipeline(
        built_engine.settings, built_engine.retriever, built_engine.embedder, llm, plain
    )
    done = _run(pipeline)[-1].result
    assert llm.judged == [] and done.signals.judgement is None and not done.refused


def test_a_follow_up_is_judged_as_joined_to_its_history_not_as_rewritten(built_engine):
    """The decision's signals are measured for the follow-up joined to the question before
    it, with any LLM or none (``rag calibrate`` and ``bench/judge.py`` fit on them), so the
    LLM is asked to judge, never to rewrite."""
    llm = ScriptedLLM("Какие-то теракты", judgement=2.0)
    pipeline = _pipeline(built_engine, llm)
    history = [(QUESTION, "Спецслужбы предотвратили 11 терактов [1].")]
    signals, _, standalone = pipeline.judged("  А  где?", history, judge=True)
    assert standalone == pipeline.plain_standalone("А где?", history) == f"{QUESTION} А где?"
    assert signals.judgement == 2.0 and llm.prompts == []
    assert QUESTION in llm.judged[0][-1]["content"]


def test_a_question_a_missing_detail_refuses_is_not_judged(built_engine):
    """A name or number of the question in no passage refuses an unsure question whatever
    the LLM would say: it is refused without the judgement's prefill."""
    llm = ScriptedLLM("Спецслужбы предотвратили 11 терактов [1].", judgement=4.0)
    pipeline = _pipeline(built_engine, llm)
    done = _run(pipeline, "Сколько терактов предотвратили в Бразилии в 1987 году?")[-1].result
    assert done.signals.missing_numbers + done.signals.missing_names > 0
    assert pipeline.calibrator.plain.refuses_missing(done.signals)
    assert done.refused and llm.judged == [] and llm.prompts == []
    assert done.signals.judgement is None and "judged_s" not in done.timings


def test_the_judgement_waits_in_line_with_the_answers():
    """The judgement takes the LLM's one slot like an answer: while another answer holds
    it, the caller is told its place; once it is free, the judgement is the result."""
    slots = SlotQueue(1)
    shared = SharedLLM(ScriptedLLM(judgement=1.5), slots, every=0.05)
    holder = slots.join()
    assert slots.take(holder, 1.0) == 0
    asking = shared.judge_in_turn(prompts.judge_messages("т", "в"), ("да",), ("нет",))
    assert next(asking) == Waiting(1)
    threading.Timer(0.2, slots.release).start()
    with pytest.raises(StopIteration) as done:
        while True:
            next(asking)
    assert done.value.value == 1.5 and slots.waiting == 0


@pytest.fixture(scope="module")
def fault_url():
    server, url = fault_llm.start()
    yield url
    server.shutdown()


def test_a_server_judges_from_its_top_logprobs(fault_url, built_engine):
    settings = built_engine.settings.replace(llm_url=f"{fault_url}/ok/v1")
    judged = OpenAICompatibleLLM(settings).judge(
        prompts.judge_messages("т", "в"), prompts.JUDGE_YES, prompts.JUDGE_NO
    )
    assert judged == pytest.approx(-0.2 - float(np.logaddexp(-2.0, -3.0)))


def test_a_server_without_logprobs_is_an_error_not_a_refusal(fault_url, built_engine):
    llm = OpenAICompatibleLLM(built_engine.settings.replace(llm_url=f"{fault_url}/nologprobs/v1"))
    with pytest.raises(LLMError, match="RAG_LLM_JUDGE=false"):
        llm.judge(prompts.judge_messages("т", "в"), prompts.JUDGE_YES, prompts.JUDGE_NO)
    with pytest.raises(LLMError, match="no log-probabilities"):
        _run(_pipeline(built_engine, llm))
    down = OpenAICompatibleLLM(built_engine.settings.replace(llm_url=f"{fault_url}/http500/v1"))
    with pytest.raises(LLMError, match="HTTP 500"):
        _run(_pipeline(built_engine, down))


def _data(seed: int = 3) -> tuple[list[Signals], list[bool]]:
    """Signals where only the judgement tells the kinds apart."""
    rng = random.Random(seed)
    labels = [rng.random() < 0.6 for _ in range(200)]
    signals = [
        Signals(
            *[rng.gauss(0.5, 0.1) for _ in Signals.names()],
            judgement=rng.gauss(2 if a else -2, 1),
        )
        for a in labels
    ]
    return signals, labels


def test_a_judged_model_is_used_only_for_its_llm_and_prompt(tmp_path, caplog):
    settings = Settings.from_env(index_dir=tmp_path, calibration="fitted")
    signals, labels = _data()
    meta = {"embedding_model": settings.embedding_model}
    fit(signals, labels, 0.05, meta).save(tmp_path / "calibration.json")
    judged = fit(
        signals,
        labels,
        0.05,
        meta | {"llm": "scripted", "judge_prompt": prompts.judge_prompt_id()},
        features=WITH_JUDGEMENT,
    )
    judged.save(judged_path(tmp_path / "calibration.json"))
    assert (tmp_path / "calibration-judged.json").exists()
    llm = ScriptedLLM()

    chosen = load_calibrator(settings, llm)
    assert isinstance(chosen, JudgedCalibrator)
    # the judgement decides: the same signals, a confident "no" against a confident "yes"
    unsure = replace(Signals(*[0.5] * len(Signals.names())), missing_numbers=0, missing_names=0)
    assert chosen.needs_judgement(unsure)
    assert chosen.refuse(replace(unsure, judgement=-5.0), extractive=False)
    assert not chosen.refuse(replace(unsure, judgement=5.0), extractive=False)
    with pytest.raises(CalibrationError, match="judgement"):
        chosen.judged.probability(unsure)

    assert isinstance(load_calibrator(settings), FittedCalibrator)  # no LLM
    assert isinstance(load_calibrator(settings.replace(llm_judge=False), llm), FittedCalibrator)
    other = ScriptedLLM()
    other.name = "another.gguf"
    with caplog.at_level(logging.WARNING):
        assert isinstance(load_calibrator(settings, other), FittedCalibrator)
    assert "another.gguf" in caplog.text and "without the LLM's judgement" in caplog.text
    judged.meta["judge_prompt"] = "older"
    judged.save(judged_path(tmp_path / "calibration.json"))
    assert isinstance(load_calibrator(settings, llm), FittedCalibrator)


def test_the_shipped_judged_model_is_fitted_for_the_default_llm_and_this_prompt():
    """Changing the judge's prompt or the default LLM needs the model fitted again
    (``bench/judge.py --fit``): this fails until it is."""
    settings = Settings.from_env()
    shipped = FittedCalibrator.load(judged_path(SHIPPED), settings)
    assert shipped.features == WITH_JUDGEMENT and 0 < shipped.threshold < 1
    assert shipped.meta["judge_prompt"] == prompts.judge_prompt_id()
    assert shipped.meta["embedding_model"] == settings.embedding_model
    assert settings.llm_model in DEFAULT_MODELS
    assert shipped.meta["llm"] == MODELS[settings.llm_model].filename


def test_rag_calibrate_with_an_llm_also_fits_the_judged_model(built_engine, tmp_path):
    questions = load_questions(PROJECT_ROOT / "tests" / "data" / "dev.jsonl")
    unanswerable = [q for q in questions if q["kind"] in UNANSWERABLE]
    chosen = unanswerable + [q for q in questions if q["kind"] not in UNANSWERABLE][:10]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in chosen), "utf-8")
    out = tmp_path / "own" / "calibration.json"
    tiny = {"RAG_LLM_MODEL": "smollm2-135m-instruct", "RAG_LLM_CONTEXT": "2048"}

    done = run_cli(built_engine, "calibrate", str(path), "--out", str(out), "--json", env=tiny)
    report = json.loads(done.stdout)
    assert report["file"] == str(out) and report["judged"]["file"] == str(judged_path(out))
    assert 0 <= report["judged"]["held_out"]["refusal"] <= 1
    judged = FittedCalibrator.load(judged_path(out), Settings.from_env())
    assert judged.features == WITH_JUDGEMENT
    assert judged.meta["llm"] == MODELS["smollm2-135m-instruct"].filename
    settings = Settings.from_env(
        llm_model="smollm2-135m-instruct", calibration_file=out, index_dir=tmp_path
    )
    llm = Engine(settings).llm
    assert isinstance(load_calibrator(settings, llm), JudgedCalibrator)

    plain_only = tmp_path / "plain" / "calibration.json"
    run_cli(built_engine, "calibrate", str(path), "--out", str(plain_only), "--no-llm", env=tiny)
    assert plain_only.exists() and not judged_path(plain_only).exists()


@pytest.mark.slow
def test_the_default_llm_judges_an_answer_above_a_non_answer(built_engine):
    """Smoke test of the default LLM on the judgement it is weighed for: the sentence
    that answers gets higher log-odds than one on the topic that does not."""
    settings = Settings.from_env()
    from rag.llm import resolve_llm_path

    llm = LlamaCppLLM(settings, resolve_llm_path(settings))
    answers = "С 2014 года в Казахстане предотвращено 11 террористических актов."
    beside = "В Астане прошли антитеррористические учения с участием полиции."
    yes, no = prompts.JUDGE_YES, prompts.JUDGE_NO
    judged = [llm.judge(prompts.judge_messages(t, QUESTION), yes, no) for t in (answers, beside)]
    assert all(math.isfinite(j) for j in judged) and judged[0] > judged[1]
    assert isinstance(load_calibrator(settings, llm), JudgedCalibrator)
    # the judge prompt's start evaluated once and loaded back (the answers' start is in
    # the context when it is asked) judges as evaluating the prompt from the start does,
    # up to the rounding of a prompt evaluated in two parts (about 0.1 in log-odds, as
    # between a whole prompt and one whose start llama.cpp reuses from the previous)
    assert llm.warm_prefix(prompts.judge_fixed_messages()) > 10
    assert llm.warm_prefix(prompts.fixed_messages()) > 10
    kept = [llm.judge(prompts.judge_messages(t, QUESTION), yes, no) for t in (answers, beside)]
    assert kept == pytest.approx(judged, abs=0.25)
