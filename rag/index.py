"""The on-disk index: FAISS vectors, the chunk table, a BM25 index and a manifest.

Layout of ``index/``::

    CURRENT              name of the live build (replaced atomically)
    builds/<id>/         one complete build: manifest.json, chunks.jsonl,
                         vectors.npy, faiss.index, lexical/
    .lock                held while a build runs

A build is written into a fresh folder and only then named in ``CURRENT`` with
``os.replace``, so a build killed at any moment leaves the previous index in
place. The manifest records the size and sha256 of every file of the build, so a
truncated or altered file is caught on load rather than read as garbage.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np
from filelock import FileLock, Timeout

from .chunking import Chunk, chunk_document
from .corpus import Skipped, read_corpus
from .errors import RagError
from .hashing import sha256_of
from .lexical import LexicalIndex
from .settings import Settings
from .store import NewBuild, Snapshot
from .stories import find as find_stories
from .stories import stories_current, with_copies

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# bump when chunk boundaries change; 6: sentences citing an official site are kept
CHUNKER_VERSION = "razdel-per-line-6"
KEEP_OLD_BUILDS = 1  # builds kept besides the live one, for readers still using them
VECTORS_IN_MEMORY = 1 << 30  # bytes; larger builds stack their vectors in a mapped file


class IndexError_(RagError, RuntimeError):
    """Base for index problems; messages tell the user what to do."""


class IndexMissingError(IndexError_):
    pass


class IndexCorruptError(IndexError_):
    pass


class IndexBusyError(IndexError_):
    pass


@dataclass
class BuildReport:
    build_id: str
    files_total: int = 0
    files_embedded: list[str] = field(default_factory=list)
    files_reused: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    files_skipped: list[Skipped] = field(default_factory=list)
    # exact copies of another file: indexed once, under that file (rag.stories)
    files_copies: list[str] = field(default_factory=list)
    stories: int = 0  # stories of two or more files (exact copies and near-duplicates)
    chunks_total: int = 0
    chunks_embedded: int = 0
    full_rebuild: bool = False
    reason: str = ""
    seconds: float = 0.0
    unchanged: bool = False

    def summary(self) -> str:
        if self.unchanged:
            return f"index is up to date ({self.files_total} files, {self.chunks_total} chunks)"
        kind = f"full rebuild ({self.reason})" if self.full_rebuild else "incremental update"
        lines = [
            f"{kind}: {self.files_total} files, {self.chunks_total} chunks in {self.seconds:.1f} s",
            f"  embedded {len(self.files_embedded)} files ({self.chunks_embedded} chunks), "
            f"reused {len(self.files_reused)}, removed {len(self.files_removed)}",
        ]
        if self.stories:
            lines.append(
                f"  duplicate stories: {self.stories} (each shown once), "
                f"{len(self.files_copies)} exact copies indexed once"
            )
        lines += [f"  skipped {s.file}: {s.reason}" for s in self.files_skipped]
        return "\n".join(lines)


def choose_faiss_kind(n_vectors: int, setting: str) -> str:
    """Exact search while it is fast enough; HNSW beyond (see bench/scale.py)."""
    if setting != "auto":
        return setting
    return "flat" if n_vectors < 100_000 else "hnsw"


def make_faiss_index(vectors: np.ndarray, kind: str) -> faiss.Index:
    dim = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 96
    elif kind == "ivfpq":
        nlist = max(16, int(4 * np.sqrt(len(vectors))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, dim // 8, 8, faiss.METRIC_INNER_PRODUCT)
        # 64 points per list train k-means well; more only costs time (minutes at 1M).
        sample = vectors
        if len(vectors) > 64 * nlist:
            rows = np.random.default_rng(0).choice(len(vectors), 64 * nlist, replace=False)
            sample = vectors[np.sort(rows)]
        index.train(sample)
        index.nprobe = 16
    else:
        raise ValueError(f"unknown FAISS index kind {kind!r} (flat, hnsw, ivfpq, auto)")
    index.add(vectors)
    return index


class Index:
    """A loaded, verified build: what search needs, read-only."""

    def __init__(
        self,
        path: Path,
        manifest: dict,
        chunks: list[Chunk],
        vectors: np.ndarray,
        faiss_index: faiss.Index,
        lexical: LexicalIndex,
    ):
        self.path = path
        self.manifest = manifest
        self.chunks = chunks
        self.vectors = vectors
        self.faiss = faiss_index
        self.lexical = lexical
        self.chunk_files = [c.file for c in chunks]  # row -> article, for article-level fusion

    @property
    def build_id(self) -> str:
        return self.manifest["build_id"]

    def __len__(self) -> int:
        return len(self.chunks)

    def reading(self):
        return nullcontext()  # a loaded build never changes

    def dense_search(self, query: np.ndarray, depth: int) -> list[tuple[int, float]]:
        scores, rows = self.faiss.search(query[None, :], depth)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

    def lexical_search(self, query: str, depth: int) -> list[tuple[int, float]]:
        scores = self.lexical.scores(query)
        rows = np.flatnonzero(scores > 0)
        if len(rows) > depth:  # keep the best `depth` (ties included) before sorting
            kth = np.partition(scores[rows], len(rows) - depth)[len(rows) - depth]
            rows = rows[scores[rows] >= kth]
        # stable: equal scores keep row order, as a stable sort of every score would
        top = rows[np.argsort(-scores[rows], kind="stable")][:depth]
        return [(int(r), float(scores[r])) for r in top]

    def lexical_coverage(self, query: str) -> float:
        return self.lexical.coverage(query)

    def lookup(self, rows: Sequence[int]) -> dict[int, Chunk]:
        return {row: self.chunks[row] for row in rows}

    def similarities(self, query: np.ndarray, rows: Sequence[int]) -> dict[int, float]:
        return {row: float(self.vectors[row] @ query) for row in rows}

    def article_texts(self) -> dict[str, str]:
        """Extracted text for converted files, else the chunks laid back at their offsets
        (the parts between chunks are boilerplate, blanked); an exact copy's is its
        holder's."""
        texts: dict[str, str] = {}
        extracted = self.path / "extracted.jsonl"
        if extracted.exists():
            for line in extracted.read_text("utf-8").splitlines():
                row = json.loads(line)
                texts[row["file"]] = row["text"]
        texts |= texts_from_chunks(c for c in self.chunks if c.file not in texts)
        return with_copies(texts, self.manifest)

    def disk_problem(self) -> str | None:
        """Whether this build's files are still on disk as written, or why not."""
        index_dir = self.path.parent.parent  # <index_dir>/builds/<id>
        if current_build_id(index_dir) != self.build_id:
            return (
                f"the index pointer {index_dir / 'CURRENT'} is missing or names another build; "
                "searches use the copy loaded in memory until the index is rebuilt"
            )
        problem = _file_problem(self.path, self.manifest, checksums=False)  # sizes: cheap
        if problem:
            return f"{problem}; searches use the copy loaded in memory until the index is rebuilt"
        return None

    @classmethod
    def load(cls, index_dir: Path) -> Index:
        path = current_build_path(index_dir)
        manifest_path = path / "manifest.json"
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(
                f"the index manifest {manifest_path} is unreadable ({exc}); "
                "rebuild it with `rag index --rebuild`"
            ) from exc
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexCorruptError(
                f"the index in {index_dir} has format {manifest.get('format')}, this version "
                f"reads {FORMAT_VERSION}; rebuild it with `rag index --rebuild`"
            )
        _verify_files(path, manifest)
        try:
            with (path / "chunks.jsonl").open(encoding="utf-8") as fh:  # line by line: a
                chunks = [Chunk(**json.loads(line)) for line in fh]  # million are gigabytes
            vectors = np.load(path / "vectors.npy", mmap_mode="r")
            if vectors.nbytes <= VECTORS_IN_MEMORY:
                vectors = np.array(vectors)
            # else left mapped: search reads a few rows and FAISS holds its own copy. Builds
            # are never rewritten in place (a removed build's mapping stays valid); only a
            # file damaged in place by hand could fail a search then.
            # FAISS is read into memory whatever its size: mapped, a million passages'
            # HNSW search was 8x slower at p95 once the pages were evicted (bench/store_scale.py)
            faiss_index = faiss.read_index(str(path / "faiss.index"))
            lexical = LexicalIndex.load(path / "lexical")
        except Exception as exc:  # verified files that still fail to parse
            raise IndexCorruptError(
                f"the index in {path} cannot be read ({exc}); rebuild it with `rag index --rebuild`"
            ) from exc
        if not (len(chunks) == len(vectors) == faiss_index.ntotal == manifest["chunks"]):
            raise IndexCorruptError(
                f"the index in {path} is inconsistent (chunk counts differ); "
                "rebuild it with `rag index --rebuild`"
            )
        return cls(path, manifest, chunks, vectors, faiss_index, lexical)


def texts_from_chunks(chunks) -> dict[str, str]:
    """Each article's text rebuilt from its chunks at their offsets, gaps blanked."""
    pieces: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        pieces.setdefault(chunk.file, []).append(chunk)
    texts = {}
    for file, file_chunks in pieces.items():
        buf = [" "] * max(c.end for c in file_chunks)
        for c in file_chunks:
            buf[c.start : c.end] = c.text
        texts[file] = "".join(buf)
    return texts


def current_build_path(index_dir: Path) -> Path:
    pointer = index_dir / "CURRENT"
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexMissingError(f"no index in {index_dir}; build it with `rag index`") from None
    path = index_dir / "builds" / name
    if not name or "/" in name or not path.is_dir():
        raise IndexCorruptError(
            f"{pointer} names a build that does not exist ({name!r}); "
            "rebuild the index with `rag index --rebuild`"
        )
    return path


def current_build_id(index_dir: Path) -> str | None:
    try:
        return (index_dir / "CURRENT").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _file_problem(path: Path, manifest: dict, checksums: bool) -> str | None:
    """What is wrong with the build's files on disk (first problem found), or None."""
    for rel, meta in manifest.get("files", {}).items():
        file = path / rel
        if not file.is_file():
            return f"index file {file} is missing"
        size = file.stat().st_size
        if size != meta["size"]:
            expected = meta["size"]
            return (
                f"index file {file} is damaged or half-written ({size} bytes, expected {expected})"
            )
        if checksums and sha256_of(file) != meta["sha256"]:
            return f"index file {file} does not match its checksum"
    return None


def _verify_files(path: Path, manifest: dict) -> None:
    problem = _file_problem(path, manifest, checksums=True)
    if problem:
        raise IndexCorruptError(f"{problem}; rebuild the index with `rag index --rebuild`")


def _fsync_write(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def settings_signature(
    settings: Settings, embedder_fingerprint: str, served_model: str | None = None
) -> dict:
    """What, when changed, makes every stored vector or chunk stale."""
    served = {"embedding_served_model": served_model} if served_model else {}
    return served | {
        "embedding_model": settings.embedding_model,
        "embedding_fingerprint": embedder_fingerprint,
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap_sentences": settings.chunk_overlap_sentences,
        "chunker": CHUNKER_VERSION,
        "format": FORMAT_VERSION,
    }


class EmbeddedStore:
    """The default store: one folder per build under ``index_dir``, switched by CURRENT."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.index_dir = settings.index_dir

    def current_build_id(self) -> str | None:
        return current_build_id(self.index_dir)

    def load(self) -> Index:
        index = Index.load(self.index_dir)
        if hasattr(index.faiss, "hnsw"):  # a search-time knob, not stored with the build
            index.faiss.hnsw.efSearch = self.settings.ann_ef_search
        return index

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.index_dir / ".lock"), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise IndexBusyError(
                f"another index build is running on {self.index_dir}; "
                "wait for it to finish and try again"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def begin(self) -> None:
        """Staging folders of builds that crashed or failed (a killed process, a full disk):
        only a build holds the lock, so none of them is being written now."""
        builds = self.index_dir / "builds"
        if builds.is_dir():
            for path in builds.glob(".*.partial"):
                shutil.rmtree(path, ignore_errors=True)

    def write(
        self, build: NewBuild, previous: Snapshot | None, fault: Callable[[str], None]
    ) -> str:
        """Every file of the build is written anew; reused files' rows (vectors and BM25
        tokens) are copied from the previous build."""
        old_rows: dict[str, list[int]] = {}
        if previous is not None and not build.full:
            assert isinstance(previous, Index)
            for row, chunk in enumerate(previous.chunks):
                old_rows.setdefault(chunk.file, []).append(row)
        reused = set(build.reused)
        chunks: list[Chunk] = []
        known_tokens: list[list[str] | None] = []  # BM25 tokens of reused chunks
        rows: list[np.ndarray] = []
        for doc in build.docs:
            if doc.file in reused:
                assert isinstance(previous, Index)
                item = old_rows.get(doc.file, [])
                doc_chunks = [previous.chunks[r] for r in item]
                rows.append(previous.vectors[item])
                known_tokens.extend(previous.lexical.tokens[r] for r in item)
            elif doc.file in build.embedded:
                doc_chunks, vectors = build.embedded[doc.file]
                rows.append(vectors)
                known_tokens.extend([None] * len(doc_chunks))
            else:  # an exact copy: its holder's passages stand for it
                doc_chunks = []
            chunks.extend(
                Chunk(c.file, doc.title, i, c.start, c.end, c.text)
                for i, c in enumerate(doc_chunks)
            )
        spill = self.index_dir / "builds" / f".{build.build_id}.vectors.partial"
        try:
            vectors = self._stack(rows, build.dimension, spill)
            lexical = LexicalIndex.build([c.text for c in chunks], known_tokens)
            return self._write(build, chunks, vectors, lexical, fault)
        finally:
            shutil.rmtree(spill, ignore_errors=True)

    def _stack(self, rows: list[np.ndarray], dimension: int, spill: Path) -> np.ndarray:
        """All vectors in one array; above VECTORS_IN_MEMORY bytes in a file mapped into
        memory (``spill``), as FAISS makes its own copy: a million passages are 3 GB."""
        total = sum(len(r) for r in rows)
        if total * dimension * 4 <= VECTORS_IN_MEMORY:
            if not rows:
                return np.zeros((0, dimension), dtype=np.float32)
            return np.ascontiguousarray(np.vstack(rows), dtype=np.float32)
        spill.mkdir(parents=True)
        out = np.lib.format.open_memmap(
            spill / "vectors.npy", mode="w+", dtype=np.float32, shape=(total, dimension)
        )
        cursor = 0
        for block in rows:
            out[cursor : cursor + len(block)] = block
            cursor += len(block)
        out.flush()
        return out

    def _write(
        self,
        build: NewBuild,
        chunks: list[Chunk],
        vectors: np.ndarray,
        lexical: LexicalIndex,
        fault: Callable[[str], None],
    ) -> str:
        builds = self.index_dir / "builds"
        builds.mkdir(exist_ok=True)
        staging = builds / f".{build.build_id}.partial"
        staging.mkdir()
        try:
            kind = self._write_files(staging, chunks, vectors, lexical, build.extracted, fault)
            self._write_manifest(staging, build, kind, chunks, vectors, fault)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # a crash leaves it for the next build
            raise
        final = builds / build.build_id
        os.replace(staging, final)
        _fsync_dir(builds)

        fault("current")
        pointer_tmp = self.index_dir / "CURRENT.tmp"
        _fsync_write(pointer_tmp, build.build_id.encode())
        os.replace(pointer_tmp, self.index_dir / "CURRENT")
        _fsync_dir(self.index_dir)
        try:
            fault("prune")
            self._prune(keep={build.build_id})
        except OSError as exc:  # the new build is live; the next build prunes again
            log.warning("could not remove old builds: %s", exc)
        return kind

    def _write_files(
        self,
        staging: Path,
        chunks: list[Chunk],
        vectors: np.ndarray,
        lexical: LexicalIndex,
        extracted: dict[str, str],
        fault: Callable[[str], None],
    ) -> str:
        fault("write chunks.jsonl")
        with (staging / "chunks.jsonl").open("w", encoding="utf-8") as fh:  # line by line:
            for c in chunks:  # a million chunks are gigabytes as one string
                fh.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        fault("write vectors.npy")
        with (staging / "vectors.npy").open("wb") as fh:
            np.save(fh, vectors)
            fh.flush()
            os.fsync(fh.fileno())
        kind = choose_faiss_kind(len(vectors), self.settings.faiss_index)
        if len(vectors) == 0:
            kind = "flat"
        fault("write faiss.index")
        faiss.write_index(make_faiss_index(vectors, kind), str(staging / "faiss.index"))
        fault("write lexical")
        lexical.save(staging / "lexical")
        # text taken from HTML/PDF/DOCX: what citation offsets into those files point into
        fault("write extracted.jsonl")
        _fsync_write(
            staging / "extracted.jsonl",
            "".join(
                json.dumps({"file": f, "text": t}, ensure_ascii=False) + "\n"
                for f, t in sorted(extracted.items())
            ).encode(),
        )
        return kind

    def _write_manifest(
        self,
        staging: Path,
        build: NewBuild,
        kind: str,
        chunks: list[Chunk],
        vectors: np.ndarray,
        fault: Callable[[str], None],
    ) -> None:
        fault("manifest")
        files = {}
        for file in sorted(p for p in staging.rglob("*") if p.is_file()):
            rel = file.relative_to(staging).as_posix()
            files[rel] = {"size": file.stat().st_size, "sha256": sha256_of(file)}
        manifest = {
            "format": FORMAT_VERSION,
            "build_id": build.build_id,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(build.started)),
            "corpus_dir": str(self.settings.corpus_dir),
            "embedding_model": self.settings.embedding_model,
            "embedding_dtype": build.embedding_dtype,
            "dimension": int(vectors.shape[1]),
            "faiss_index": kind,
            "chunker": {
                "splitter": "razdel",
                "max_tokens": self.settings.chunk_tokens,
                "overlap_sentences": self.settings.chunk_overlap_sentences,
            },
            "signature": build.signature,
            "documents": build.documents,
            "stories": build.stories,
            "chunks": len(chunks),
            "counts": build.counts(),
            "skipped": {s.file: s.reason for s in build.skipped},
            "files": files,
        }
        _fsync_write(
            staging / "manifest.json",
            json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"),
        )
        _fsync_dir(staging)

    def _prune(self, keep: set[str]) -> None:
        """Remove failed partial builds and all but the newest old builds."""
        builds = self.index_dir / "builds"
        old = sorted(
            (p for p in builds.iterdir() if p.name not in keep),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        finished = [p for p in old if not p.name.startswith(".")]
        for path in [p for p in old if p.name.startswith(".")] + finished[KEEP_OLD_BUILDS:]:
            shutil.rmtree(path, ignore_errors=True)


class IndexBuilder:
    """Builds or updates the index for a corpus folder, one build at a time.

    Reads the corpus, finds the files whose hash changed since the live build, chunks and
    embeds only those, and hands the result to the store, which switches atomically.
    """

    def __init__(
        self,
        settings: Settings,
        embedder,
        progress: bool = True,
        fault: Callable[[str], None] | None = None,
        store=None,
    ):
        from .store import open_store

        self.settings = settings
        self.embedder = embedder
        self.progress = progress
        self.store = store if store is not None else open_store(settings)
        # called with the name of each step before it runs ("embed", "write chunks.jsonl",
        # …, "manifest", "current", "prune"): tests raise there to fail the build at that step
        self.fault = fault or (lambda step: None)

    def build(
        self, rebuild: bool = False, on_progress: Callable[[float, str], None] | None = None
    ) -> BuildReport:
        with self.store.locked():
            self.store.begin()
            return self._build_locked(rebuild, on_progress or (lambda f, m: None))

    def _previous(self) -> Snapshot | None:
        try:
            return self.store.load()
        except IndexMissingError:
            return None
        except IndexCorruptError as exc:
            log.warning("previous index unusable, building from scratch: %s", exc)
            return None

    def _build_locked(
        self, rebuild: bool, on_progress: Callable[[float, str], None]
    ) -> BuildReport:
        started = time.time()
        # unique per build (readers reload when CURRENT names another id): two builds
        # of one process can start within the same second
        micros = int(started * 1_000_000) % 1_000_000
        build_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started)) + (
            f".{micros:06d}-{os.getpid()}"
        )
        report = BuildReport(build_id=build_id)
        on_progress(0.0, "reading the corpus")
        docs, report.files_skipped = read_corpus(self.settings.corpus_dir)
        report.files_total = len(docs)
        signature = settings_signature(
            self.settings, self.embedder.fingerprint, getattr(self.embedder, "served_model", None)
        )

        previous = None if rebuild else self._previous()
        if rebuild:
            report.full_rebuild, report.reason = True, "requested"
        elif previous is None:
            report.full_rebuild, report.reason = True, "no usable previous index"
        elif previous.manifest.get("signature") != signature:
            report.full_rebuild, report.reason = True, "model or chunk settings changed"
            previous = None

        old_files: dict[str, dict] = previous.manifest["documents"] if previous else {}
        current = {d.file for d in docs}
        report.files_removed = sorted(set(old_files) - current)

        if (
            previous
            # found with today's method (builds before duplicates were found have none)
            and stories_current(previous.manifest.get("stories"))
            and not report.files_removed
            and all(old_files.get(d.file, {}).get("sha256") == d.sha256 for d in docs)
        ):
            report.unchanged = True
            report.chunks_total = len(previous)
            report.files_reused = [d.file for d in docs]
            report.build_id = previous.build_id
            stories = previous.manifest["stories"]
            report.files_copies, report.stories = sorted(stories["copies"]), len(stories["groups"])
            on_progress(1.0, "index is up to date")
            return report

        # Exact copies are indexed once; a story's holder of passages stays where it was.
        on_progress(0.05, "finding duplicate stories")
        old_copies = previous.manifest.get("stories", {}).get("copies", {}) if previous else {}
        stories = find_stories(docs, holders=set(old_files) - set(old_copies))
        report.files_copies = sorted(stories.copies)
        report.stories = len(stories.groups)

        # Chunk changed files; the store keeps the rows of unchanged ones.
        new_chunks: dict[str, list[Chunk]] = {}
        to_embed: list[Chunk] = []
        copies: list[str] = []  # new or changed exact copies: stored without passages
        for doc in docs:
            same = previous and old_files.get(doc.file, {}).get("sha256") == doc.sha256
            # a copy whose holder went (or a holder that became a copy) is stored anew
            if same and (doc.file in old_copies) == (doc.file in stories.copies):
                report.files_reused.append(doc.file)
            elif doc.file in stories.copies:
                copies.append(doc.file)
            else:
                chunks = chunk_document(
                    doc,
                    self.embedder.count_tokens,
                    self.settings.chunk_tokens,
                    self.settings.chunk_overlap_sentences,
                )
                new_chunks[doc.file] = chunks
                to_embed.extend(chunks)
                report.files_embedded.append(doc.file)
        report.chunks_embedded = len(to_embed)

        on_progress(0.1, f"embedding {len(to_embed)} passages")
        self.fault("embed")
        new_vectors = self._embed(to_embed, on_progress)

        embedded: dict[str, tuple[list[Chunk], np.ndarray]] = {}
        cursor = 0
        for file, chunks in new_chunks.items():
            embedded[file] = (chunks, new_vectors[cursor : cursor + len(chunks)])
            cursor += len(chunks)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
        documents: dict[str, dict] = {}
        reused_files = set(report.files_reused)
        for doc in docs:
            reused = doc.file in reused_files
            if reused:
                chunk_count = old_files[doc.file]["chunks"]
            else:
                chunk_count = len(embedded[doc.file][0]) if doc.file in embedded else 0
            documents[doc.file] = {
                "sha256": doc.sha256,
                "title": doc.title,
                "encoding": doc.encoding,
                "format": doc.format,
                "date": doc.date or None,
                "source": doc.source,
                "author": doc.author,
                "language": doc.language,
                "chunks": chunk_count,
                "indexed_at": old_files[doc.file]["indexed_at"] if reused else stamp,
            }
        report.chunks_total = sum(d["chunks"] for d in documents.values())

        on_progress(0.85, "writing the index")
        build = NewBuild(
            build_id=build_id,
            started=started,
            signature=signature,
            docs=docs,
            documents=documents,
            embedded=embedded,
            copies=copies,
            stories=stories.to_dict(),
            reused=report.files_reused,
            removed=report.files_removed,
            skipped=report.files_skipped,
            extracted={d.file: d.original for d in docs if d.format != "text"},
            full=previous is None,
            dimension=int(self.embedder.dim),
            embedding_model=self.settings.embedding_model,
            embedding_dtype=self.embedder.dtype,
        )
        self.store.write(build, previous, self.fault)
        report.seconds = time.time() - started
        on_progress(1.0, "done")
        return report

    def _embed(self, chunks: list[Chunk], on_progress: Callable[[float, str], None]) -> np.ndarray:
        if not chunks:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        batch = max(1, self.settings.embedding_batch_size) * 4
        out = []
        for i in range(0, len(chunks), batch):
            part = chunks[i : i + batch]
            out.append(
                self.embedder.embed_documents(
                    [c.text for c in part], [c.title for c in part], progress=self.progress
                )
            )
            done = min(len(chunks), i + batch)
            on_progress(0.1 + 0.75 * done / len(chunks), f"embedded {done}/{len(chunks)} passages")
        return np.vstack(out)


def corpus_status(settings: Settings, index: Index | None) -> dict:
    """Which files were added, changed or removed since the index was built (no embedding)."""
    from .corpus import list_files, relative_name

    indexed = index.manifest["documents"] if index else {}
    on_disk = {relative_name(settings.corpus_dir, p): p for p in list_files(settings.corpus_dir)}
    skipped = index.manifest.get("skipped", {}) if index else {}
    added, changed = [], []
    for name, path in on_disk.items():
        if name in indexed:
            if sha256_of(path) != indexed[name]["sha256"]:
                changed.append(name)
        elif name not in skipped:
            added.append(name)
    removed = sorted(set(indexed) - set(on_disk))
    return {
        "added": sorted(added),
        "changed": sorted(changed),
        "removed": removed,
        "up_to_date": not (added or changed or removed),
    }
