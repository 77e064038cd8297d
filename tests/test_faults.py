"""Faults while the system runs: index files vanish or rot, articles change under a
citation, the model file is missing or cut short at start-up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from rag.index import Index
from rag.models import MODELS
from rag.settings import PROJECT_ROOT, Settings
from rag.ui.articles import status_text
from rag.ui.labels import LABELS
from rag.ui.render import render_article

QUESTION = "Сколько терактов предотвращено с 2014 года?"
GOLD = "000_14c9b7630dbfab34.txt"


def test_index_deleted_while_serving_keeps_answering_and_rebuild_recovers(make_engine):
    engine = make_engine()
    engine.build_index()
    first = engine.search(QUESTION)
    assert first[0].file == GOLD and engine.retriever.problem() is None
    old_id = engine.index.build_id

    shutil.rmtree(engine.settings.index_dir)  # someone wipes index/ under the server
    assert [h.file for h in engine.search(QUESTION)] == [h.file for h in first]
    assert "missing" in engine.retriever.problem()
    status = status_text(engine)  # what the Articles tab shows
    assert "⚠️" in status and "missing" in status and "Обновить индекс" in status

    report = engine.build_index()
    assert report.full_rebuild and report.reason == "no usable previous index"
    assert engine.index.build_id != old_id and engine.retriever.problem() is None
    assert "⚠️" not in status_text(engine)
    assert engine.search(QUESTION)[0].file == GOLD


def test_index_corrupted_while_serving_is_reported_and_rebuilt(make_engine):
    engine = make_engine()
    engine.build_index()
    engine.search(QUESTION)
    faiss_file = engine.index.path / "faiss.index"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])  # rot on disk

    assert engine.search(QUESTION)[0].file == GOLD  # the loaded copy still serves
    problem = engine.retriever.problem()
    assert "damaged" in problem and "faiss.index" in problem

    report = engine.build_index()  # the damaged build cannot be reused: full rebuild
    assert report.full_rebuild
    assert engine.retriever.problem() is None
    assert Index.load(engine.settings.index_dir).build_id == engine.index.build_id


def test_unreadable_new_build_keeps_the_loaded_one(make_engine):
    engine = make_engine()
    engine.build_index()
    loaded = engine.index.build_id
    index_dir = engine.settings.index_dir
    broken = index_dir / "builds" / "broken-build"
    shutil.copytree(engine.index.path, broken)
    (broken / "manifest.json").write_text("{ half a manifest", encoding="utf-8")
    (index_dir / "CURRENT").write_text("broken-build", encoding="utf-8")

    assert engine.search(QUESTION)[0].file == GOLD
    assert engine.index.build_id == loaded
    assert "unreadable" in engine.retriever.problem()
    engine.build_index()
    assert engine.retriever.problem() is None and engine.index.build_id != loaded


def test_citation_lookup_after_the_article_was_deleted_or_edited(built_engine, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(built_engine.settings.corpus_dir, corpus)
    settings = Settings.from_env(corpus_dir=corpus)
    hit = built_engine.search(QUESTION)[0]
    original = (corpus / hit.file).read_text(encoding="utf-8")

    page = render_article(settings, hit.file, hit.start, hit.end, hit.text)
    assert "<mark>" in page

    (corpus / hit.file).write_text("Новый заголовок\n\n" + original, encoding="utf-8")
    page = render_article(settings, hit.file, hit.start, hit.end, hit.text, LABELS["en"])
    assert "<mark>" not in page and "changed since it was indexed" in page
    page = render_article(settings, hit.file, hit.start, hit.end, hit.text, LABELS["ru"])
    assert "<mark>" not in page and "изменился после индексации" in page

    (corpus / hit.file).unlink()
    page = render_article(settings, hit.file, hit.start, hit.end, hit.text)
    assert "<mark>" not in page and "no longer in the corpus" in page

    page = render_article(settings, "../../etc/passwd", 0, 10)
    assert "outside the corpus" in page


def _start_ui(model: str, tmp_path) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        RAG_LLM_MODEL=model,
        RAG_INDEX_DIR=str(tmp_path / "index"),
        RAG_PORT="1",  # never reached: start-up must stop before serving
        GRADIO_ANALYTICS_ENABLED="False",
    )
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "ui.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_or_truncated_model_stops_the_ui_at_start_with_a_clear_message(tmp_path):
    missing = _start_ui(str(tmp_path / "gone.gguf"), tmp_path)
    assert missing.returncode != 0
    assert "does not exist" in missing.stderr and "RAG_LLM_MODEL" in missing.stderr

    source = MODELS["smollm2-135m-instruct"].target(Settings.from_env().models_dir)
    cut = tmp_path / "cut.gguf"
    with source.open("rb") as fh:
        cut.write_bytes(fh.read(source.stat().st_size // 3))
    truncated = _start_ui(str(cut), tmp_path)
    assert truncated.returncode != 0
    assert "truncated or damaged" in truncated.stderr
    assert "Traceback" not in truncated.stderr


@pytest.mark.parametrize("name", ["embeddinggemma-300m"])
def test_missing_embedding_model_says_how_to_get_it(tmp_path, name):
    from rag.embeddings import Embedder, ModelMissingError

    settings = Settings.from_env(home_dir=tmp_path, embedding_model=name)
    with pytest.raises(ModelMissingError, match="rag models"):
        Embedder(settings)
