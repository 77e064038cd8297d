"""Faults while the system runs: index files vanish or rot, articles change under a
citation, the model file is missing or cut short at start-up, a build fails at any
step (a full disk, a crash) or the corpus changes while it runs."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys

import pytest

from rag.hashing import sha256_of
from rag.index import Index, IndexBuilder, current_build_id
from rag.models import MODELS
from rag.settings import PROJECT_ROOT, Settings
from rag.ui.articles import status_text
from rag.ui.labels import LABELS
from rag.ui.render import render_article
from tests.conftest import CORPUS

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
    page = render_article(settings, hit.file, hit.start, hit.end, hit.text, LABELS["en"])
    assert "<mark>" not in page and "no longer in the corpus" in page

    page = render_article(settings, "../../etc/passwd", 0, 10, labels=LABELS["en"])
    assert "no longer in the corpus" in page and "root:" not in page  # refused, nothing shown


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


BUILD_STEPS = [
    "embed",
    "write chunks.jsonl",
    "write vectors.npy",
    "write faiss.index",
    "write lexical",
    "write extracted.jsonl",
    "manifest",
    "current",
]


def _disk_full_at(step: str):
    def fault(now: str) -> None:
        if now == step:
            raise OSError(errno.ENOSPC, "No space left on device")

    return fault


def test_a_fault_at_every_build_step_keeps_the_old_index_and_a_later_build_recovers(
    make_engine,
):
    engine = make_engine(sorted(CORPUS.iterdir())[:2])
    engine.build_index()
    index_dir, corpus = engine.settings.index_dir, engine.settings.corpus_dir
    old_id = current_build_id(index_dir)
    gold = engine.search(QUESTION)[0].file
    edited = corpus / sorted(os.listdir(corpus))[1]
    for step in BUILD_STEPS:
        edited.write_text(edited.read_text(encoding="utf-8") + f"\n\nДобавлено: {step}.\n")
        builder = IndexBuilder(engine.settings, engine.embedder, False, _disk_full_at(step))
        with pytest.raises(OSError, match="No space left"):
            builder.build()
        assert current_build_id(index_dir) == old_id, step  # the old index keeps serving
        assert Index.load(index_dir).build_id == old_id
        assert engine.search(QUESTION)[0].file == gold and engine.retriever.problem() is None
        assert not list((index_dir / "builds").glob(".*.partial")), step
    report = engine.build_index()  # recovers: the edit is picked up
    assert not report.unchanged and report.files_embedded == [edited.name]
    assert engine.index.build_id == current_build_id(index_dir) != old_id
    assert "Добавлено: current." in " ".join(c.text for c in engine.index.chunks)

    # a failure while pruning old builds leaves the new build live
    edited.write_text(edited.read_text(encoding="utf-8") + "\n\nЕщё одна правка.\n")
    builder = IndexBuilder(engine.settings, engine.embedder, False, _disk_full_at("prune"))
    live = builder.build().build_id
    assert current_build_id(index_dir) == live and Index.load(index_dir).build_id == live


def test_partial_folders_of_a_crashed_build_are_removed_by_the_next_build(make_engine):
    engine = make_engine(sorted(CORPUS.iterdir())[:1])
    engine.build_index()
    builds = engine.settings.index_dir / "builds"
    crashed = builds / ".20260101-000000.000000-1.partial"  # as a killed build leaves it
    crashed.mkdir()
    (crashed / "chunks.jsonl").write_text('{"half": ', encoding="utf-8")
    report = engine.build_index()  # nothing changed, yet the stale folder goes
    assert report.unchanged and not crashed.exists()
    assert engine.search(QUESTION)


def test_articles_edited_or_deleted_during_a_build_give_a_consistent_index(make_engine):
    engine = make_engine(sorted(CORPUS.iterdir())[:3])
    corpus, index_dir = engine.settings.corpus_dir, engine.settings.index_dir
    edited, deleted, _ = sorted(corpus.iterdir())
    before = edited.read_text(encoding="utf-8")

    def change_corpus(step: str) -> None:
        if step == "embed":  # the corpus was read; the vectors are not computed yet
            edited.write_text("Совсем другая статья\n\nПро погоду в Астане.\n", encoding="utf-8")
            deleted.unlink()

    IndexBuilder(engine.settings, engine.embedder, False, change_corpus).build()
    index = Index.load(index_dir)
    indexed = index.manifest["documents"][edited.name]
    assert indexed["sha256"] == hashlib.sha256(before.encode("utf-8")).hexdigest()
    texts = [c.text for c in index.chunks if c.file == edited.name]
    assert texts and all(t in before for t in texts)  # the text that was hashed
    report = engine.build_index()
    assert report.files_embedded == [edited.name] and report.files_removed == [deleted.name]
    index = Index.load(index_dir)
    assert deleted.name not in index.manifest["documents"]
    assert index.manifest["documents"][edited.name]["sha256"] == sha256_of(edited)
