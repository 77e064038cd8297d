"""Shared fixtures: the real default embedding model, loaded once per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag.engine import Engine
from rag.settings import PROJECT_ROOT, Settings

CORPUS = PROJECT_ROOT / "corpus"


@pytest.fixture(scope="session")
def embedder():
    from rag.embeddings import Embedder

    return Embedder(Settings.from_env())


@pytest.fixture(scope="session")
def tiny_settings() -> Settings:
    """Settings naming the tiny SmolLM2-135M, which stands in for the default LLM where a
    test needs a real model but not good answers."""
    from rag.models import MODELS

    settings = Settings.from_env(llm_model="smollm2-135m-instruct", llm_context=2048)
    if not MODELS["smollm2-135m-instruct"].is_installed(settings.models_dir):
        pytest.fail("run `rag models smollm2-135m-instruct` (test.sh does)")
    return settings


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


def run_cli(
    engine: Engine, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``rag ARGS`` in a fresh process against ``engine``'s corpus and index, with
    ``env`` added to the environment."""
    env = dict(
        os.environ,
        RAG_CORPUS_DIR=str(engine.settings.corpus_dir),
        RAG_INDEX_DIR=str(engine.settings.index_dir),
        **(env or {}),
    )
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=check,
    )
