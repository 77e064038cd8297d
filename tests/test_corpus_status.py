"""corpus_status: only a missing index means "every file is new"; other problems surface."""

from __future__ import annotations

import pytest

from rag.engine import Engine
from rag.index import IndexCorruptError
from rag.settings import Settings


def _engine(tmp_path) -> Engine:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Заголовок\n\nТекст статьи про выборы.\n", encoding="utf-8")
    engine = Engine(Settings.from_env(corpus_dir=corpus, index_dir=tmp_path / "index"))
    engine.embedder = object()  # the status reads files and the manifest, never embeds
    return engine


def test_missing_index_reports_every_file_added(tmp_path):
    status = _engine(tmp_path).corpus_status()
    assert status["added"] == ["a.txt"]


def test_damaged_index_is_an_error_not_all_added(tmp_path):
    engine = _engine(tmp_path)
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "CURRENT").write_text("gone", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="does not exist"):
        engine.corpus_status()
