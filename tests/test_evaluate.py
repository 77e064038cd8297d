"""Scoring: keys match whole numbers and word starts; evidence recall counts gold keys in
the hits and in the passages given to the LLM."""

from __future__ import annotations

import pytest

from rag.engine import Engine
from rag.evaluate import answer_correct, evaluate, evaluate_engine, key_matches
from tests.fake_llm import ScriptedLLM


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("Предотвращено 11 терактов.", "11", True),
        ("с 2011 года", "11", False),
        ("в 2013 году", "3", False),
        ("в 2013 году", "2013", True),
        ("рост на 11,5 %", "11", False),
        ("рост на 1.11 %", "11", False),
        ("11-й раз", "11", True),
        ("(2013)", "2013", True),
        ("Сведения передавались", "сведени", True),
        ("он был осведомлён", "сведени", False),
        ("ОБМЕН информацией", "обмен", True),
        ("взаимообмен", "обмен", False),
        ("Актёр и режиссёр", "актер", True),
        ("актер", "Актёр", True),
        ("Центральной и Южной Азии", "центральной и южной азии", True),
        ("Sky UK", "sky", True),
        ("skyline", "sky", True),  # a key is a prefix: "sky" stems "skyline" too
        ("", "11", False),
        ("11", "", False),
    ],
)
def test_key_matches(text, key, expected):
    assert key_matches(text, key) is expected


def test_answer_correct_needs_one_key():
    assert answer_correct("В 2013 году.", ["2014", "2013"])
    assert not answer_correct("В 2013 году.", ["201", "13"])


def _retrieve(hits, passages):
    return lambda item: {
        "query": item["q"],
        "files": [f for f, _ in hits],
        "hits": hits,
        "passages": passages,
    }


def test_evidence_recall_counts_keys_in_gold_files_only():
    questions = [
        {"id": "a", "kind": "fact", "q": "?", "any": ["11"], "src": ["g.txt"], "history": []},
        {"id": "b", "kind": "fact", "q": "?", "any": ["Швейкин"], "src": ["g.txt"]},
        {"id": "c", "kind": "nearmiss", "q": "?", "any": [], "src": []},
    ]
    for q in questions:
        q.setdefault("history", [])
    hits = [("other.txt", "Швейкин сказал"), ("g.txt", "Предотвращено 11 терактов с 2011 года.")]
    passages = [("g.txt", "с 2011 года")]  # the window lost the answer
    result = evaluate(questions, _retrieve(hits, passages))
    rows = {r["id"]: r for r in result["questions"]}
    assert rows["a"]["evidence_hits"] is True
    assert rows["a"]["evidence_passages"] is False
    assert rows["b"]["evidence_hits"] is False  # the name is only in another article
    assert "evidence_hits" not in rows["c"]  # unanswerable: not scored
    overall = result["summary"]["overall"]
    assert overall["evidence_hits"] == 0.5
    assert overall["evidence_passages"] == 0.0


def test_answers_scored_with_the_matcher_and_unanswerable_kinds():
    questions = [
        {"id": "a", "kind": "fact", "q": "?", "any": ["11"], "src": ["g.txt"], "history": []},
        {"id": "n", "kind": "nearmiss", "q": "?", "any": [], "src": [], "history": []},
        {"id": "x", "kind": "absent", "q": "?", "any": [], "src": [], "history": []},
    ]
    answers = {
        "a": {"answer": "С 2011 года.", "refused": False, "cited_files": ["g.txt"]},
        "n": {"answer": "Не знаю.", "refused": True, "cited_files": []},
        "x": {"answer": "В 1990.", "refused": False, "cited_files": ["g.txt"]},
    }
    result = evaluate(questions, _retrieve([("g.txt", "11")], []), lambda item: answers[item["id"]])
    rows = {r["id"]: r for r in result["questions"]}
    assert rows["a"]["correct"] is False  # "11" is not in "2011"
    assert "correct" not in rows["n"]
    summary = result["summary"]
    assert summary["overall"]["answer_accuracy"] == 0.0
    assert summary["nearmiss"]["refusal_unanswerable"] == 1.0
    assert summary["absent"]["refusal_unanswerable"] == 0.0
    assert summary["overall"]["refusal_unanswerable"] == 0.5


def test_a_followup_is_searched_with_the_llm_rewrite(built_engine):
    """Eval searches a follow-up the way answering does: with the configured LLM's rewrite,
    not the previous question glued to it."""
    rewrite = "Как давно была раскрыта группировка, планировавшая теракты в Астане?"
    engine = Engine(built_engine.settings, llm=ScriptedLLM(rewrite))
    engine.__dict__["embedder"] = built_engine.embedder
    item = {
        "id": "f",
        "kind": "followup",
        "q": "Как давно была раскрыта эта группировка?",
        "any": ["4 месяца"],
        "src": ["003_1e54f2a5aa88fe05.txt"],
        "history": [["Кто сообщил, что в Астане готовились теракты?", "Аким Джаксыбеков [1]."]],
    }
    with_llm = evaluate_engine(engine, [item], None, answers=False, use_llm=True)
    row = with_llm["questions"][0]
    assert row["query"] == rewrite
    assert row["files"][0] == "003_1e54f2a5aa88fe05.txt"
    assert row["evidence_hits"] is True
    without = evaluate_engine(engine, [item], None, answers=False, use_llm=False)
    assert without["questions"][0]["query"] == engine.contextual_query(item["q"], item["history"])
