"""The one Python API that the CLI, the UI and the benchmarks share.

Models are loaded lazily and once per process; everything per-user (conversation
history) is passed in by the caller, never stored here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property

from .index import BuildReport, Index, IndexBuilder, corpus_status
from .retrieve import Hit, Retriever
from .settings import Settings


class Engine:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self._load_lock = threading.Lock()

    @cached_property
    def embedder(self):
        from .embeddings import Embedder

        with self._load_lock:
            return Embedder(self.settings)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.settings, self.embedder)

    @property
    def index(self) -> Index:
        return self.retriever.index

    def search(self, query: str, k: int | None = None, mode: str | None = None) -> list[Hit]:
        return self.retriever.search(query, k=k, mode=mode)

    def build_index(
        self,
        rebuild: bool = False,
        progress: bool = False,
        on_progress: Callable[[float, str], None] | None = None,
    ) -> BuildReport:
        builder = IndexBuilder(self.settings, self.embedder, progress=progress)
        return builder.build(rebuild=rebuild, on_progress=on_progress)

    def corpus_status(self) -> dict:
        try:
            index = self.index
        except Exception:
            index = None
        return corpus_status(self.settings, index)


_DEFAULT: Engine | None = None


def default_engine() -> Engine:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Engine()
    return _DEFAULT


def search(query: str, k: int | None = None, mode: str | None = None) -> list[Hit]:
    """``rag.search("вопрос")``: ranked passages from the index in ``index/``."""
    return default_engine().search(query, k=k, mode=mode)


def build_index(rebuild: bool = False) -> BuildReport:
    """``rag.build_index()``: incremental (or full) build of ``index/`` from ``corpus/``."""
    return default_engine().build_index(rebuild=rebuild)
