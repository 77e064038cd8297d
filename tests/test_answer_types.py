"""The expected-answer-type check: an answer of the wrong kind is not an answer."""

from __future__ import annotations

import pytest

from rag import prompts
from rag.answer import AnswerPipeline, answer
from rag.answer_types import asks_for, is_bare_time, names_in, off_type
from rag.calibration import ThresholdCalibrator
from rag.engine import Engine
from tests.fake_llm import ScriptedLLM

PASSAGE = (
    "Об этом сообщил первый заместитель начальника штаба АТЦ КНБ Сергей Швейкин. "
    "Сложившаяся ситуация определила поручение разработать в 2013 году программу."
)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Когда раскрыли группировку?", "time"),
        ("В каком году поручили разработать программу?", "time"),
        ("Как давно КНБ раскрыл группировку?", "time"),
        ("What year was the programme drafted?", "time"),
        ("Сколько терактов предотвращено с 2014 года?", "quantity"),
        ("How many soldiers serve in the company?", "quantity"),
        ("Кто рассказал о предотвращении терактов?", "person"),
        ("Как зовут прокурора Астаны?", "person"),
        ("Who called Kazakhstan a model?", "person"),
        ("Кто такой Сергей Швейкин?", None),  # a description, not a name
        ("Who is Sergei Shveikin?", None),
        ("Какой годовой бюджет у КНБ?", None),
        ("Где планировались теракты?", None),
    ],
)
def test_what_a_question_asks_for(question, kind):
    assert asks_for(question) == kind


def test_bare_times_are_recognised():
    for text in ("В 2013 году [1].", "11 декабря [2].", "С 2014 года.", "In 2015 [1]."):
        assert is_bare_time(text), text
    for text in ("11 [1].", "Около 40 боевиков [1].", "В 2013 году поручили [1].", ""):
        assert not is_bare_time(text), text


def test_names_are_capitalised_inside_a_sentence_or_acronyms():
    names = names_in([PASSAGE])
    assert {"швейкин", "серг", "кнб", "атц"} <= names
    assert "сложивш" not in names and "об" not in names  # first words of sentences


@pytest.mark.parametrize(
    ("question", "reply", "wrong"),
    [
        ("Какой годовой бюджет у КНБ?", "В 2013 году [1].", True),  # a date for an amount
        ("Сколько терактов предотвращено?", "В 2013 году [1].", True),
        ("В каком году поручили разработать программу?", "В 2013 году [1].", False),
        ("Сколько терактов предотвращено?", "Одиннадцать терактов [1].", False),
        ("Сколько терактов предотвращено?", "11 [1].", False),
        ("Сколько стоит программа?", "Программу разработали по поручению [1].", True),
        ("Кто рассказал о терактах?", "Спецслужбы рассказали о терактах [1].", True),
        ("Кто рассказал о терактах?", "Сергей Швейкин [1].", False),
        ("Кто рассказал о терактах?", "Швейкин рассказал [1].", False),  # first, yet a name
        ("Кто из КНБ рассказал о терактах?", "КНБ рассказал [1].", True),  # in the question
        ("Как давно раскрыли группировку?", "Группировку раскрыли в Астане [1].", True),
        ("Как давно раскрыли группировку?", "Четыре месяца назад [1].", False),
        ("Где разработали программу?", "В 2013 году [1].", True),
        ("Где разработали программу?", "В Казахстане [1].", False),  # not checked
    ],
)
def test_answers_of_the_wrong_kind(question, reply, wrong):
    assert off_type(reply, question, [PASSAGE]) is wrong


@pytest.fixture
def scripted(built_engine):
    """An engine whose LLM (a scripted stand-in) replies with a fixed text, shown as the
    answer when it passes the checks (``answer_mode="llm"``: these tests are of them)."""

    def make(reply: str) -> Engine:
        settings = built_engine.settings.replace(answer_mode="llm")
        engine = Engine(settings, llm=ScriptedLLM(reply))
        engine.__dict__["embedder"] = built_engine.embedder
        return engine

    return make


def test_a_date_for_an_amount_over_loosely_related_passages_is_refused(scripted):
    """The default model's reply to the one unanswerable development question it answered:
    each word is in a passage, so only its kind shows that it answers nothing."""
    result = answer(scripted("В 2013 году [1]."), "Какой годовой бюджет у КНБ Казахстана?")
    assert not result["weak_evidence"] and result["raw_answer"] == "В 2013 году [1]."
    assert result["refused"] and result["citations"] == []
    assert result["answer"] == prompts.REFUSAL["ru"]


def test_a_reply_without_the_asked_name_gives_way_to_the_extractive_answer(scripted):
    question = "Кто рассказал о предотвращении 11 террористических актов?"
    reply = "Специальными правоохранительными органами предотвращены 11 террористических актов [1]."
    result = answer(scripted(reply), question)
    assert result["fallback"] == "off_type" and not result["refused"]
    assert result["answer"] != reply and result["citations"]
    assert result["unsupported"] == []
    # a name, even one that answers wrongly, is the kind asked for: the model's answer stays
    named = "На территории Казахстана предотвращены 11 террористических актов [1]."
    kept = answer(scripted(named), question)
    assert kept["fallback"] is None and kept["answer"].startswith("На территории Казахстана")


def _final(pipeline, question: str) -> dict:
    return [e for e in pipeline.run(question)][-1].result.to_dict()


def test_the_hand_set_rule_refuses_an_extractive_answer_of_the_wrong_kind(built_engine):
    """The articles do not say how many were convicted, and the sentences that match the
    question best give no number. The hand-set rule (``calibration = "threshold"``)
    refuses; the fitted default weighs the wrong kind as one signal among others."""
    engine = built_engine
    pipeline = AnswerPipeline(
        engine.settings,
        engine.retriever,
        engine.embedder,
        None,
        ThresholdCalibrator(engine.settings),
    )
    question = "Сколько человек осуждено за участие в боевых действиях за рубежом?"
    result = _final(pipeline, question)
    assert result["refused"] and result["citations"] == []
    assert result["signals"]["off_type"] == 1.0
    answered = _final(pipeline, "Сколько терактов предотвращено с 2014 года?")
    assert not answered["refused"] and "11" in answered["answer"]
