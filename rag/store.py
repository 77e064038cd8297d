"""What search and index builds need from a store, and which store the settings pick.

The embedded store (``rag.index``: FAISS + bm25s files in ``index/``) and PostgreSQL
(``rag.pgstore``: pgvector + Russian full-text search) implement it.
Rows are opaque integer ids, stable within one snapshot (positions in the embedded store).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .chunking import Chunk

if TYPE_CHECKING:
    from .corpus import Document, Skipped
    from .settings import Settings


class Snapshot(Protocol):
    """One build of the index, as search reads it."""

    # "build_id", "documents" (file -> sha256, title, date, source, chunks, indexed_at…),
    # "skipped" (file -> reason), "signature" (what makes stored vectors stale)
    manifest: dict

    @property
    def build_id(self) -> str: ...

    def __len__(self) -> int: ...

    def reading(self) -> AbstractContextManager[None]:
        """Hold one consistent view for the calls inside (one search)."""

    def dense_search(self, query: np.ndarray, depth: int) -> list[tuple[int, float]]:
        """(row, inner product) of the ``depth`` nearest passages, best first."""

    def lexical_search(self, query: str, depth: int) -> list[tuple[int, float]]:
        """(row, score > 0) of the ``depth`` best lexical matches, best first."""

    def lexical_coverage(self, query: str) -> float:
        """Share of the query's words that occur in the corpus (0..1)."""

    def lookup(self, rows: Sequence[int]) -> dict[int, Chunk]:
        """The chunks (file, title, exact offsets, text) of ``rows``."""

    def similarities(self, query: np.ndarray, rows: Sequence[int]) -> dict[int, float]:
        """Inner product of the query with each row's stored vector."""

    def article_texts(self) -> dict[str, str]:
        """Every article's indexed text (what citation offsets point into)."""

    def disk_problem(self) -> str | None:
        """Why the stored build differs from this loaded one, or None."""


@dataclass
class NewBuild:
    """What a build writes: the corpus as read, and the passages embedded for it."""

    build_id: str
    started: float
    signature: dict
    docs: list[Document]  # every readable file, in corpus order
    documents: dict[str, dict]  # file -> metadata row of the manifest
    embedded: dict[str, tuple[list[Chunk], np.ndarray]]  # new or changed files
    reused: list[str]  # files whose stored chunks and vectors stay
    removed: list[str]
    copies: list[str] = field(default_factory=list)  # new exact copies: no passages of their own
    stories: dict = field(default_factory=dict)  # rag.stories.Stories.to_dict()
    skipped: list[Skipped] = field(default_factory=list)
    extracted: dict[str, str] = field(default_factory=dict)  # HTML/PDF/DOCX text
    full: bool = False  # nothing of the previous build is kept
    dimension: int = 0
    embedding_model: str = ""
    embedding_dtype: str = ""

    def counts(self) -> dict[str, int]:
        return {
            "files": len(self.docs),
            "files_embedded": len(self.embedded),
            "files_copies": len(self.copies),
            "files_reused": len(self.reused),
            "files_removed": len(self.removed),
            "files_skipped": len(self.skipped),
            "chunks_embedded": sum(len(chunks) for chunks, _ in self.embedded.values()),
        }


class Store(Protocol):
    """Where builds are written and the live one is read from."""

    def current_build_id(self) -> str | None:
        """The live build's id, cheaply (readers poll it), None when there is none."""

    def load(self) -> Snapshot:
        """The live build; raises IndexMissingError / IndexCorruptError."""

    def locked(self) -> AbstractContextManager[None]:
        """Held for a whole build; raises IndexBusyError while another build holds it."""

    def begin(self) -> None:
        """Under the lock, before reading the previous build: clean up crashed builds."""

    def write(
        self, build: NewBuild, previous: Snapshot | None, fault: Callable[[str], None]
    ) -> str:
        """Make ``build`` the live one atomically; returns the dense index kind used."""


def open_store(settings: Settings) -> Store:
    """PostgreSQL when ``database_url`` is set (``rag.pgstore``), else the embedded files
    in ``index_dir``."""
    if settings.database_url:
        from .pgstore import PgStore

        return PgStore(settings)
    from .index import EmbeddedStore

    return EmbeddedStore(settings)
