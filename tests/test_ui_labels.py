"""Messages the answer layer raises reach the English UI in English."""

from __future__ import annotations

import re

import pytest

from rag.answer import QuestionError, clean_question
from rag.ui.labels import labels_for


@pytest.mark.parametrize("question", ["", "   ?!  ", "слово " * 500])
def test_question_errors_have_a_label_in_every_language(question):
    with pytest.raises(QuestionError) as caught:
        clean_question(question, max_chars=100)
    error = caught.value
    english = labels_for("en")[error.code].format(**error.params)
    assert not re.search("[а-яё]", english, re.IGNORECASE)
    assert labels_for("ru")[error.code].format(**error.params)


def test_the_context_error_has_labels_too():
    for lang in ("ru", "en"):
        assert labels_for(lang)["context_full"]
