"""The real FAISS index: build, incremental update, atomic swap, corruption, locking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from filelock import FileLock

from rag.index import Index, IndexBusyError, IndexCorruptError, IndexMissingError
from tests.conftest import CORPUS, run_cli


def test_built_index_has_manifest_and_exact_offsets(built_engine):
    index = built_engine.index
    manifest = index.manifest
    assert manifest["dimension"] == 768 == index.vectors.shape[1]
    assert manifest["embedding_model"] == "embeddinggemma-300m"
    assert set(manifest["documents"]) == {p.name for p in CORPUS.glob("*.txt")}
    assert manifest["chunks"] == len(index.chunks) == index.faiss.ntotal
    for c in index.chunks:
        original = (CORPUS / c.file).read_text(encoding="utf-8")
        assert original[c.start : c.end] == c.text
    for rel in ("chunks.jsonl", "vectors.npy", "faiss.index", "manifest.json"):
        assert (index.path / rel).is_file()


def test_search_finds_the_article_about_11_prevented_attacks(built_engine):
    hits = built_engine.search("Сколько терактов предотвращено с 2014 года?", mode="dense")
    assert hits[0].file == "000_14c9b7630dbfab34.txt"
    assert hits[0].text == (CORPUS / hits[0].file).read_text("utf-8")[hits[0].start : hits[0].end]


def test_incremental_rebuild_embeds_only_what_changed(make_engine):
    engine = make_engine()
    first = engine.build_index()
    assert first.full_rebuild and first.chunks_embedded == first.chunks_total > 0

    again = engine.build_index()
    assert again.unchanged and again.chunks_embedded == 0

    corpus = engine.settings.corpus_dir
    changed = corpus / "002_d69177beeccd8da5.txt"
    changed.write_text(changed.read_text("utf-8") + "\nДобавленный абзац о новых мерах.\n", "utf-8")
    (corpus / "004_f51bb655b442c524.txt").unlink()
    (corpus / "new.md").write_text(
        "Новая статья о безопасности\n\nВ Алматы прошли учения.", "utf-8"
    )
    update = engine.build_index()
    assert not update.full_rebuild
    assert sorted(update.files_embedded) == ["002_d69177beeccd8da5.txt", "new.md"]
    assert update.files_removed == ["004_f51bb655b442c524.txt"]
    assert len(update.files_reused) == 3
    index = engine.index
    per_file = {f: sum(c.file == f for c in index.chunks) for f in index.manifest["documents"]}
    assert update.chunks_embedded == per_file["002_d69177beeccd8da5.txt"] + per_file["new.md"]
    assert "004_f51bb655b442c524.txt" not in per_file
    assert engine.search("учения в Алматы", k=1)[0].file == "new.md"
    # the manifest counts what happened
    assert index.manifest["counts"]["chunks_embedded"] == update.chunks_embedded

    # a change of chunk settings forces a full rebuild
    resized = engine.settings.replace(chunk_tokens=120)
    from rag.engine import Engine

    other = Engine(resized)
    other.__dict__["embedder"] = engine.embedder
    report = other.build_index()
    assert report.full_rebuild and "settings" in report.reason


def test_killed_build_leaves_the_old_index_loadable(make_engine):
    engine = make_engine()
    engine.build_index()
    old = Index.load(engine.settings.index_dir)
    corpus = engine.settings.corpus_dir
    for i in range(6):  # enough text that the rebuild takes a while
        for src in CORPUS.glob("*.txt"):
            (corpus / f"copy{i}_{src.name}").write_text(
                src.read_text("utf-8") + f"\nКопия {i}.", "utf-8"
            )
    env = dict(os.environ, RAG_CORPUS_DIR=str(corpus), RAG_INDEX_DIR=str(engine.settings.index_dir))
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "index"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 300
    seen = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        seen += line
        if "Batches" in line or not line:
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert "Batches" in seen, seen
    survivor = Index.load(engine.settings.index_dir)
    assert survivor.build_id == old.build_id and len(survivor) == len(old)
    assert engine.search("Сколько терактов предотвращено с 2014 года?", k=1)[0].file.startswith(
        "000"
    )


def test_truncated_index_file_gives_a_clear_message(make_engine):
    engine = make_engine()
    engine.build_index()
    path = Index.load(engine.settings.index_dir).path / "faiss.index"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError, match=r"half-written.*rag index --rebuild"):
        Index.load(engine.settings.index_dir)
    out = run_cli(engine, "search", "теракт", check=False)
    assert out.returncode == 1
    assert "rag index --rebuild" in out.stderr and "Traceback" not in out.stderr
    # a rebuild recovers
    engine.build_index(rebuild=True)
    assert len(Index.load(engine.settings.index_dir)) > 0


def test_garbled_manifest_and_missing_index(make_engine):
    engine = make_engine()
    with pytest.raises(IndexMissingError, match="rag index"):
        Index.load(engine.settings.index_dir)
    engine.build_index()
    manifest = Index.load(engine.settings.index_dir).path / "manifest.json"
    manifest.write_text(manifest.read_text()[:100])
    with pytest.raises(IndexCorruptError, match="rebuild"):
        Index.load(engine.settings.index_dir)


def test_second_concurrent_build_is_refused(make_engine):
    engine = make_engine()
    engine.settings.index_dir.mkdir(parents=True)
    with (
        FileLock(str(engine.settings.index_dir / ".lock")),
        pytest.raises(IndexBusyError, match="another index build is running"),
    ):
        engine.build_index()


def test_cli_search_json_shape(built_engine):
    out = run_cli(
        built_engine, "search", "Сколько терактов предотвращено с 2014 года?", "--k", "3", "--json"
    )
    data = json.loads(out.stdout)
    assert data["query"] == "Сколько терактов предотвращено с 2014 года?"
    assert len(data["results"]) == 3
    first = data["results"][0]
    assert set(first) == {
        "rank",
        "file",
        "title",
        "date",
        "source",
        "chunk",
        "start",
        "end",
        "score",
        "text",
        "duplicates",  # other copies of the story (tests/test_duplicates.py)
    }
    assert first["duplicates"] == []
    assert first["rank"] == 1 and first["file"] == "000_14c9b7630dbfab34.txt"


def test_hnsw_search_depth_is_a_setting(make_engine):
    """HNSW's efSearch is read from the settings at load time, not frozen in the build."""
    engine = make_engine(faiss_index="hnsw", ann_ef_search=300)
    engine.build_index()
    index = engine.index
    assert index.manifest["faiss_index"] == "hnsw"
    assert index.faiss.hnsw.efSearch == 300
    hits = engine.search("Сколько терактов предотвратили?", k=3)
    assert hits and hits[0].file
