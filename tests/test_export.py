"""A conversation exported as Markdown and JSON, each citation resolved to its place."""

from __future__ import annotations

import json

from rag.export import Turn, made_of_sentences, to_json, to_markdown
from tests.conftest import run_cli

CITATION = {
    "n": 1,
    "file": "000_14c9b7630dbfab34.txt",
    "title": "КНБ: с 2014 года предотвращено 11 терактов",
    "start": 120,
    "end": 190,
    "text": "С 2014 года\nпредотвращено 11 терактов.",
    "supported": True,
    "date": "2024-05-01",
}
ANSWERED = {
    "question": "Сколько терактов предотвращено с 2014 года?",
    "answer": "С 2014 года предотвращено 11 терактов [1].",
    "refused": False,
    "fallback": None,
    "llm": "qwen2.5-coder-1.5b-instruct",
    "citations": [CITATION],
    "unsupported": [],
}
REFUSED = {
    "question": "Какая погода на Марсе?",
    "answer": "В найденных статьях нет ответа на этот вопрос.",
    "refused": True,
    "fallback": None,
    "llm": None,
    "citations": [],
    "unsupported": [],
}


def test_markdown_lists_each_answer_with_its_resolved_sources():
    turns = [Turn.from_result(ANSWERED), Turn.from_result(REFUSED)]
    text = to_markdown(turns, "ru", exported_at="2026-12-02 18:00 UTC")
    assert text.startswith("# Разговор с архивом новостей\n")
    assert "_Экспортировано: 2026-12-02 18:00 UTC_" in text
    assert "## 1. Сколько терактов предотвращено с 2014 года?" in text
    assert ANSWERED["answer"] in text
    source = (
        "[1] КНБ: с 2014 года предотвращено 11 терактов — `000_14c9b7630dbfab34.txt`, "
        "2024-05-01, символы 120–190"
    )
    assert source in text
    assert "> С 2014 года предотвращено 11 терактов." in text  # the sentence, one line
    assert "## 2. Какая погода на Марсе?" in text and "Источников нет" in text
    assert "Ответ составлен" not in text  # the model wrote the first answer
    english = to_markdown(turns, "en")
    assert "characters 120–190" in english and "Exported" not in english


def test_json_has_title_file_date_offsets_and_sentence_of_each_citation():
    data = json.loads(to_json([Turn.from_result(ANSWERED)], exported_at="now"))
    assert data["exported_at"] == "now"
    (turn,) = data["turns"]
    assert turn["question"] == ANSWERED["question"] and turn["answer"] == ANSWERED["answer"]
    assert turn["sources"] == [
        {
            "n": 1,
            "title": CITATION["title"],
            "file": CITATION["file"],
            "date": "2024-05-01",
            "start": 120,
            "end": 190,
            "sentence": "С 2014 года предотвращено 11 терактов.",
        }
    ]


def test_an_answer_of_article_sentences_says_so_whatever_the_internal_reason():
    for fallback in ("echo", "language", "off_type"):
        result = {**ANSWERED, "fallback": fallback}
        assert made_of_sentences(result)
        assert "_Ответ составлен из предложений статей._" in to_markdown([Turn.from_result(result)])
        assert fallback not in to_markdown([Turn.from_result(result)])
    assert made_of_sentences({**ANSWERED, "llm": None})  # no model at all
    assert not made_of_sentences(ANSWERED) and not made_of_sentences(REFUSED)


def test_rag_ask_markdown_gives_the_export_of_one_question(built_engine):
    question = "Сколько терактов предотвращено с 2014 года?"
    shown = run_cli(built_engine, "ask", question, "--no-llm", "--markdown").stdout
    result = json.loads(run_cli(built_engine, "ask", question, "--no-llm", "--json").stdout)
    assert shown.startswith("# ") and f"## 1. {question}" in shown
    assert result["answer"] in shown and "Ответ составлен из предложений статей" in shown
    assert result["citations"]
    for c in result["citations"]:
        assert f"`{c['file']}`" in shown and f"{c['start']}–{c['end']}" in shown
        assert "> " + " ".join(c["text"].split()) in shown
