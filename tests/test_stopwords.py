"""The stop-word list ships as a data file in the package and is applied by tokenize."""

from __future__ import annotations

from rag.lexical import STOPWORDS, tokenize


def test_stopwords_load_from_the_package_data():
    assert len(STOPWORDS) == 183
    assert {"и", "в", "что", "the", "which"} <= STOPWORDS
    assert all(w and w == w.strip() and not w.startswith("#") for w in STOPWORDS)


def test_tokenize_drops_stopwords():
    assert tokenize("Что и как сообщает сайт") == ["сообща", "сайт"]
