"""Shared fixtures: the real default embedding model, loaded once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.engine import Engine
from rag.settings import PROJECT_ROOT, Settings

CORPUS = PROJECT_ROOT / "corpus"


@pytest.fixture(scope="session")
def embedder():
    from rag.embeddings import Embedder

    return Embedder(Settings.from_env())


@pytest.fixture
def make_engine(tmp_path, embedder):
    """An Engine over a private copy of the corpus and a private index folder."""

    def make(corpus_files: list[Path] | None = None, **overrides) -> Engine:
        corpus = tmp_path / "corpus"
        if not corpus.exists():
            corpus.mkdir()
            for path in corpus_files if corpus_files is not None else sorted(CORPUS.iterdir()):
                shutil.copy(path, corpus / path.name)
        settings = Settings.from_env(corpus_dir=corpus, index_dir=tmp_path / "index", **overrides)
        engine = Engine(settings)
        engine.__dict__["embedder"] = embedder  # share the loaded model
        return engine

    return make


@pytest.fixture(scope="session")
def built_engine(tmp_path_factory, embedder) -> Engine:
    """The default corpus indexed once with the default model, shared read-only."""
    root = tmp_path_factory.mktemp("default")
    shutil.copytree(CORPUS, root / "corpus")
    settings = Settings.from_env(corpus_dir=root / "corpus", index_dir=root / "index")
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    engine.build_index()
    return engine
