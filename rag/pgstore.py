"""The index in PostgreSQL: pgvector (HNSW) for dense search, Russian full-text search
(``to_tsvector('russian', …)``, ranked by ``ts_rank``) for the lexical side.

Chosen by ``RAG_DATABASE_URL``. Tables (all prefixed ``rag_``)::

    rag_meta      key -> jsonb: the live build (id, model, dimension, signature, …)
    rag_articles  file, sha256, manifest row, extracted text of HTML/PDF/DOCX files
    rag_chunks    id, file, chunk, title, offsets, text, embedding vector(d),
                  tsv (generated: to_tsvector('russian', text)); HNSW and GIN indexes
    rag_lexemes   lexeme -> number of chunks holding it (the corpus vocabulary)

A build changes only the rows of added, changed and removed files, all in one
transaction: readers see the old build until it commits. A session advisory lock
refuses a second build; a crashed build is rolled back by the server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from .chunking import Chunk
from .errors import RagError
from .index import (
    CHUNKER_VERSION,
    IndexBusyError,
    IndexCorruptError,
    IndexError_,
    IndexMissingError,
    texts_from_chunks,
)
from .settings import Settings, hide_password
from .store import NewBuild, Snapshot
from .stories import with_copies

try:
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg.types.json import Jsonb
except ImportError as exc:  # the optional extra is not installed
    raise RagError(
        "RAG_DATABASE_URL is set but the PostgreSQL client is missing; "
        "install it with `pip install 'newsrag[postgres]'`"
    ) from exc

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# one build at a time per database: pg_try_advisory_lock key ("newsrag" in ASCII)
BUILD_LOCK_KEY = 0x6E657773726167
MAX_EF_SEARCH = 1000  # pgvector's limit; deeper searches scan every row
CONNECT_TIMEOUT = 5  # seconds


class DatabaseError(IndexError_):
    """The database is unreachable or a query failed."""


class SchemaMismatchError(IndexCorruptError):
    """The database holds an index of another model or schema version (a build replaces it)."""


# An OR query of the question's lexemes: plainto_tsquery would demand every word.
_QUERY = "(SELECT replace(plainto_tsquery('russian', %(q)s)::text, ' & ', ' | ')::tsquery AS q)"
# ts_rank reads every matching row, and at a million passages a common word matches a
# hundred thousand of them. So only the question's rarest words (by rag_lexemes) are searched
# while the chunks holding them add up to at most LEXICAL_ROWS (the rarest one always): the
# common words add little to the ranking and most of its cost. Below that many matches
# (every corpus of a few thousand articles) it is the plain OR of all the words.
LEXICAL_ROWS = 20_000
_RARE_QUERY = (
    "(SELECT coalesce(string_agg(quote, ' | '), '')::tsquery AS q FROM (SELECT chr(39)"
    " || replace(replace(lexeme, chr(92), chr(92) || chr(92)), chr(39), chr(39) || chr(39))"
    " || chr(39) AS quote,"
    " sum(chunks) OVER w AS running, row_number() OVER w AS n"
    " FROM (SELECT DISTINCT l.lexeme, l.chunks FROM unnest(to_tsvector('russian', %(q)s)) AS t"
    " JOIN rag_lexemes l ON l.lexeme = t.lexeme) AS words"
    " WINDOW w AS (ORDER BY chunks, lexeme)) AS kept WHERE running <= %(rows)s OR n = 1)"
)


def _schema(dimension: int) -> list[str]:
    return [
        "CREATE TABLE rag_meta (key text PRIMARY KEY, value jsonb NOT NULL)",
        "CREATE TABLE rag_articles (file text PRIMARY KEY, sha256 text NOT NULL,"
        " meta jsonb NOT NULL, extracted text)",
        "CREATE TABLE rag_chunks ("
        " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " file text NOT NULL REFERENCES rag_articles (file) ON DELETE CASCADE,"
        " chunk integer NOT NULL, title text NOT NULL,"
        " start_offset integer NOT NULL, end_offset integer NOT NULL, text text NOT NULL,"
        f" embedding vector({int(dimension)}) NOT NULL,"
        " tsv tsvector GENERATED ALWAYS AS (to_tsvector('russian', text)) STORED,"
        " UNIQUE (file, chunk))",
        "CREATE TABLE rag_lexemes (lexeme text PRIMARY KEY, chunks integer NOT NULL)",
    ]


# built after the first bulk load (faster than growing them row by row)
_INDEXES = [
    "CREATE INDEX rag_chunks_embedding ON rag_chunks USING hnsw (embedding vector_ip_ops)",
    "CREATE INDEX rag_chunks_tsv ON rag_chunks USING gin (tsv)",
]
_TABLES = ("rag_lexemes", "rag_chunks", "rag_articles", "rag_meta")


@contextmanager
def _database_errors(where: str) -> Iterator[None]:
    """psycopg errors as one-line DatabaseErrors naming the server."""
    try:
        yield
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DatabaseError(
            f"cannot reach the database {where} ({reason}); check RAG_DATABASE_URL "
            "and that the server is running"
        ) from None
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        raise DatabaseError(f"the database {where} failed: {reason}") from None


def _register_vector(conn: psycopg.Connection) -> bool:
    """Let numpy arrays pass as pgvector values, once the extension exists."""
    if conn.execute("SELECT to_regtype('vector')").fetchone()[0] is None:
        return False
    register_vector(conn)
    return True


class PgStore:
    """The index in one PostgreSQL database (see the module docstring)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.url = settings.database_url
        self.where = hide_password(self.url)
        self._local = threading.local()  # one reading connection per thread
        self._build_conn: psycopg.Connection | None = None

    # --- connections ------------------------------------------------------------------
    def connect(self) -> psycopg.Connection:
        with _database_errors(self.where):
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
            # one search sees one state of the tables (see PgSnapshot.reading)
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            return conn

    def _conn(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._local.conn = self.connect()
        if not getattr(self._local, "vectors", False):  # a build may have added pgvector
            with _database_errors(self.where):
                self._local.vectors = _register_vector(conn)
        return conn

    def _meta(self, conn: psycopg.Connection) -> dict | None:
        """The live build's row, None when the database holds no index."""
        if conn.execute("SELECT to_regclass('rag_meta')").fetchone()[0] is None:
            return None
        row = conn.execute("SELECT value FROM rag_meta WHERE key = 'build'").fetchone()
        return row[0] if row else None

    # --- Store ------------------------------------------------------------------------
    def current_build_id(self) -> str | None:
        with _database_errors(self.where):
            meta = self._meta(self._conn())
        return meta["build_id"] if meta else None

    def load(self) -> PgSnapshot:
        conn = self._conn()
        with _database_errors(self.where), conn.transaction():
            meta = self._meta(conn)
            if meta is None:
                raise IndexMissingError(
                    f"no index in the database {self.where}; build it with `rag index`"
                )
            self._check(meta)
            documents = {
                file: row
                for file, row in conn.execute("SELECT file, meta FROM rag_articles").fetchall()
            }
            count = conn.execute("SELECT count(*) FROM rag_chunks").fetchone()[0]
        manifest = {**meta, "documents": documents}
        return PgSnapshot(self, manifest, count)

    def _check(self, meta: dict) -> None:
        if meta.get("format") != SCHEMA_VERSION:
            raise SchemaMismatchError(
                f"the index in the database {self.where} has schema version "
                f"{meta.get('format')}, this version reads {SCHEMA_VERSION}; "
                "rebuild it with `rag index --rebuild`"
            )
        model = self.settings.embedding_model
        if meta.get("embedding_model") != model:
            raise SchemaMismatchError(
                f"the index in the database {self.where} was built with the embedding model "
                f"{meta.get('embedding_model')} ({meta.get('dimension')} dimensions), "
                f"the settings name {model}; rebuild it with `rag index --rebuild` or set "
                f"RAG_EMBEDDING_MODEL={meta.get('embedding_model')}"
            )

    @contextmanager
    def locked(self) -> Iterator[None]:
        conn = self.connect()
        try:
            with _database_errors(self.where):
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (BUILD_LOCK_KEY,))
                if not got.fetchone()[0]:
                    raise IndexBusyError(
                        f"another index build is running on the database {self.where}; "
                        "wait for it to finish and try again"
                    )
            self._build_conn = conn
            yield
        finally:
            self._build_conn = None
            conn.close()  # ends the session: releases the lock, rolls back what is open

    def begin(self) -> None:
        """Nothing to clean up: a crashed build's transaction was rolled back."""

    def write(
        self, build: NewBuild, previous: Snapshot | None, fault: Callable[[str], None]
    ) -> str:
        """Replace the rows of changed files and name the new build, in one transaction."""
        conn = self._build_conn or self.connect()
        with _database_errors(self.where):
            self._ensure_extension(conn)
            with conn.transaction():
                meta = self._meta(conn)
                full = (
                    build.full
                    or meta is None
                    or meta.get("format") != SCHEMA_VERSION
                    or meta.get("dimension") != build.dimension
                )
                if full:
                    for table in _TABLES:
                        conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
                    for statement in _schema(build.dimension):
                        conn.execute(statement)
                else:
                    self._forget(conn, [*build.removed, *build.embedded, *build.copies])
                fault("write articles")
                self._insert(conn, build)
                fault("write lexemes")
                self._count_lexemes(conn, list(build.embedded), +1)
                if full:
                    for statement in _INDEXES:
                        conn.execute(statement)
                fault("manifest")
                conn.execute(
                    "INSERT INTO rag_meta VALUES ('build', %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (Jsonb(self._manifest(build)),),
                )
                fault("current")
        return "hnsw"

    def _ensure_extension(self, conn: psycopg.Connection) -> None:
        if conn.execute("SELECT to_regtype('vector')").fetchone()[0] is None:
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"the database {self.where} lacks the pgvector extension and it cannot be "
                    f"created ({' '.join(str(exc).split())}); install pgvector on the server "
                    "or run CREATE EXTENSION vector as its owner"
                ) from None
        _register_vector(conn)

    def _forget(self, conn: psycopg.Connection, files: list[str]) -> None:
        """Remove the rows of removed and re-embedded files, and their words' counts."""
        if not files:
            return
        self._count_lexemes(conn, files, -1)
        conn.execute("DELETE FROM rag_lexemes WHERE chunks <= 0")
        conn.execute("DELETE FROM rag_articles WHERE file = ANY(%s)", (files,))

    def _count_lexemes(self, conn: psycopg.Connection, files: list[str], sign: int) -> None:
        """Add (+1) or subtract (-1) the chunk counts of the words in ``files``' chunks."""
        if not files:
            return
        conn.execute(
            "INSERT INTO rag_lexemes"
            " SELECT lexeme, %(sign)s * count(*) FROM rag_chunks, unnest(tsv) AS t(lexeme)"
            " WHERE file = ANY(%(files)s) GROUP BY lexeme"
            " ON CONFLICT (lexeme) DO UPDATE SET chunks = rag_lexemes.chunks + excluded.chunks",
            {"sign": sign, "files": files},
        )

    def _insert(self, conn: psycopg.Connection, build: NewBuild) -> None:
        titles = {doc.file: doc.title for doc in build.docs}
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO rag_articles VALUES (%s, %s, %s, %s)",
                [
                    (
                        f,
                        build.documents[f]["sha256"],
                        Jsonb(build.documents[f]),
                        build.extracted.get(f),
                    )
                    for f in [*build.embedded, *build.copies]
                ],
            )
            copy_sql = (
                "COPY rag_chunks (file, chunk, title, start_offset, end_offset, text, embedding)"
                " FROM STDIN WITH (FORMAT BINARY)"
            )
            with cur.copy(copy_sql) as copy:
                copy.set_types(["text", "int4", "text", "int4", "int4", "text", "vector"])
                for file, (chunks, vectors) in build.embedded.items():
                    for i, (c, vector) in enumerate(zip(chunks, vectors, strict=True)):
                        copy.write_row(
                            (
                                file,
                                i,
                                titles[file],
                                c.start,
                                c.end,
                                c.text,
                                np.asarray(vector, dtype=np.float32),
                            )
                        )

    def _manifest(self, build: NewBuild) -> dict:
        return {
            "format": SCHEMA_VERSION,
            "build_id": build.build_id,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(build.started)),
            "corpus_dir": str(self.settings.corpus_dir),
            "embedding_model": build.embedding_model,
            "embedding_dtype": build.embedding_dtype,
            "dimension": build.dimension,
            "dense_index": "hnsw",
            "chunker": CHUNKER_VERSION,
            "signature": build.signature,
            "stories": build.stories,
            "counts": build.counts(),
            "skipped": {s.file: s.reason for s in build.skipped},
        }


class PgSnapshot:
    """The live build as search reads it; rows are ``rag_chunks.id``."""

    def __init__(self, store: PgStore, manifest: dict, count: int):
        self.store = store
        self.manifest = manifest
        self.count = count

    @property
    def build_id(self) -> str:
        return self.manifest["build_id"]

    def __len__(self) -> int:
        return self.count

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One REPEATABLE READ transaction: a build committing meanwhile is not seen."""
        conn = self.store._conn()
        with _database_errors(self.store.where), conn.transaction():
            yield

    def _rows(self, sql: str, params) -> list[tuple]:
        with _database_errors(self.store.where):
            return self.store._conn().execute(sql, params).fetchall()

    def dense_search(self, query: np.ndarray, depth: int) -> list[tuple[int, float]]:
        """HNSW by inner product; ordered by the distance alone, so the index is used
        (ties are broken here)."""
        vector = np.asarray(query, dtype=np.float32)
        conn = self.store._conn()
        with _database_errors(self.store.where), conn.transaction():
            if depth > MAX_EF_SEARCH:  # HNSW returns at most ef_search rows: scan them all
                conn.execute("SET LOCAL enable_indexscan = off")
            ef = min(MAX_EF_SEARCH, max(self.store.settings.ann_ef_search, depth))
            conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
            rows = conn.execute(
                "SELECT id, -(embedding <#> %(q)s) FROM rag_chunks"
                " ORDER BY embedding <#> %(q)s LIMIT %(k)s",
                {"q": vector, "k": depth},
            ).fetchall()
        return sorted(((int(r), float(s)) for r, s in rows), key=lambda x: (-x[1], x[0]))

    def lexical_search(self, query: str, depth: int) -> list[tuple[int, float]]:
        words = _RARE_QUERY if LEXICAL_ROWS else _QUERY
        rows = self._rows(
            f"SELECT id, ts_rank(tsv, q) AS score FROM rag_chunks, {words} AS query"
            " WHERE tsv @@ q ORDER BY score DESC, id LIMIT %(k)s",
            {"q": query, "k": depth, "rows": LEXICAL_ROWS},
        )
        return [(int(r), float(s)) for r, s in rows if s > 0]

    def lexical_coverage(self, query: str) -> float:
        """Share of the query's words (each occurrence, stop words left out) that some
        chunk holds, as the embedded BM25 vocabulary counts them."""
        found, total = self._rows(
            "SELECT coalesce(sum(n) FILTER (WHERE known), 0), coalesce(sum(n), 0) FROM ("
            " SELECT array_length(positions, 1) AS n,"
            " EXISTS (SELECT 1 FROM rag_lexemes l WHERE l.lexeme = w.lexeme) AS known"
            " FROM unnest(to_tsvector('russian', %s)) AS w) AS words",
            (query,),
        )[0]
        return float(found) / total if total else 0.0

    def lookup(self, rows: Sequence[int]) -> dict[int, Chunk]:
        found = self._rows(
            "SELECT id, file, title, chunk, start_offset, end_offset, text FROM rag_chunks"
            " WHERE id = ANY(%s::bigint[])",
            (list(rows),),
        )
        return {int(r[0]): Chunk(*r[1:]) for r in found}

    def similarities(self, query: np.ndarray, rows: Sequence[int]) -> dict[int, float]:
        found = self._rows(
            "SELECT id, -(embedding <#> %s) FROM rag_chunks WHERE id = ANY(%s::bigint[])",
            (np.asarray(query, dtype=np.float32), list(rows)),
        )
        return {int(r): float(s) for r, s in found}

    def article_texts(self) -> dict[str, str]:
        """Extracted text for converted files, else the chunks laid back at their offsets
        (as the embedded store does)."""
        texts = dict(
            self._rows("SELECT file, extracted FROM rag_articles WHERE extracted IS NOT NULL", ())
        )
        chunks = self._rows(
            "SELECT c.file, c.title, c.chunk, c.start_offset, c.end_offset, c.text"
            " FROM rag_chunks c JOIN rag_articles a USING (file)"
            " WHERE a.extracted IS NULL ORDER BY c.file, c.chunk",
            (),
        )
        return with_copies(texts | texts_from_chunks(Chunk(*row) for row in chunks), self.manifest)

    def disk_problem(self) -> str | None:
        """Why the database no longer serves this build, or None."""
        try:
            live = self.store.current_build_id()
        except DatabaseError as exc:
            return str(exc)
        if live != self.build_id:
            return f"the database {self.store.where} no longer holds build {self.build_id}"
        return None
