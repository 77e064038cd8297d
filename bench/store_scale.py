"""Both stores at scale: build time, disk, memory, hybrid search latency and recall.

    .venv/bin/python bench/store_scale.py --sizes 100000,1000000

Passages are generated from the real articles (``corpus/`` and the XQuAD-ru articles):
windows of their sentences, recombined across articles, with names and numbers swapped
between articles and clauses reordered, so the lexical side sees real Russian text and
vocabulary, not copies. Embedding a million passages on a CPU takes many hours, so only a
base set is: the chunks of built indexes and their stored embeddings (``--base-index``),
or sentence windows of the articles embedded once with the configured model (cached under
``bench/data/store-scale/``). Each generated passage's vector is a random mix of its two
source passages' vectors plus Gaussian noise, normalised. Queries are the real questions
of the question sets, embedded with the real model.

Each store is built through its real ``Store.write`` from one ``NewBuild`` and searched
through the app's ``Retriever`` (hybrid fusion), each step in a child process so that its
peak memory is its own. Reported per store and size: build seconds, disk, peak RSS of the
builder (and the PostgreSQL server's summed PSS), hybrid search p50/p95 (query vectors
precomputed: the query embedding is not included), dense and
lexical search p95 alone, dense recall@10 against exact search on the same vectors, and the
overlap of the hybrid top 10 with the hybrid top 10 over exact dense search.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.chunking import Chunk, sentence_spans  # noqa: E402
from rag.corpus import Document, read_corpus  # noqa: E402
from rag.settings import Settings  # noqa: E402

DATA = ROOT / "bench" / "data" / "store-scale"
ARTICLES = [ROOT / "corpus", ROOT / "bench" / "data" / "xquad-ru" / "corpus"]
QUESTION_FILES = [
    ROOT / "tests" / "data" / "dev.jsonl",
    ROOT / "tests" / "data" / "test.jsonl",
    ROOT / "tests" / "data" / "heldout.jsonl",
    ROOT / "bench" / "data" / "xquad-ru" / "questions.jsonl",
]
PER_FILE = 10  # passages per generated article
NOISE = 0.1  # norm of the noise added to a generated passage's vector (before normalising)
_NAME = re.compile(r"(?<=[^.!?\s] )[А-ЯЁA-Z][а-яёa-z]{2,}")
_NUMBER = re.compile(r"\b\d[\d.,]*\d\b|\b\d\b")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_gb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from
    the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 2**20, 2)
    return float("nan")


# --- the base set: real sentence windows, embedded once ---------------------------------
def article_sentences() -> list[tuple[str, list[str]]]:
    """(title, sentences) of every real article."""
    out = []
    for folder in ARTICLES:
        docs, _ = read_corpus(folder)
        for doc in docs:
            sentences = [
                " ".join(doc.original[s:e].split())
                for a, b in doc.sections
                for s, e in sentence_spans(doc.original[a:b], a)
            ]
            out.append((doc.title, [s for s in sentences if len(s) > 20]))
    return out


def indexed_passages(index_dirs: list[Path]) -> tuple[list[dict], np.ndarray]:
    """The chunks of built indexes (``rag index``) and their stored real embeddings, as base
    passages split into sentences: no embedding needed."""
    from rag.index import Index

    windows, vectors = [], []
    for article, folder in enumerate(index_dirs):
        index = Index.load(folder)
        titles = sorted({c.file for c in index.chunks})
        for chunk in index.chunks:
            sentences = [" ".join(chunk.text[s:e].split()) for s, e in sentence_spans(chunk.text)]
            sentences = [x for x in sentences if len(x) > 20] or [chunk.text]
            windows.append(
                {
                    "article": article * 10_000 + titles.index(chunk.file),
                    "title": chunk.title,
                    "sentences": sentences,
                }
            )
        vectors.append(index.vectors)
    return windows, np.vstack(vectors).astype(np.float32)


def base_set(size: int) -> tuple[list[dict], np.ndarray]:
    """Windows of 2 and 3 consecutive sentences of the real articles and their real
    embeddings (computed once, cached)."""
    texts_path, vectors_path = DATA / "base.json", DATA / "base-vectors.npy"
    if texts_path.exists() and vectors_path.exists():
        return json.loads(texts_path.read_text("utf-8")), np.load(vectors_path)
    windows = []
    for article, (title, sentences) in enumerate(article_sentences()):
        for start in range(len(sentences)):
            for width in (2, 3):
                if start + width <= len(sentences):
                    part = sentences[start : start + width]
                    windows.append({"article": article, "title": title, "sentences": part})
    rng = np.random.default_rng(1)
    if len(windows) > size:
        windows = [windows[i] for i in sorted(rng.choice(len(windows), size, replace=False))]
    from rag.embeddings import Embedder

    embedder = Embedder(Settings.from_env())
    log(f"embedding {len(windows)} base passages with {embedder.name}")
    vectors = embedder.embed_documents(
        [" ".join(w["sentences"]) for w in windows], [w["title"] for w in windows], progress=True
    )
    DATA.mkdir(parents=True, exist_ok=True)
    np.save(vectors_path, vectors)
    texts_path.write_text(json.dumps(windows, ensure_ascii=False), "utf-8")
    return windows, vectors


def questions(limit: int) -> tuple[list[str], np.ndarray]:
    """Real questions of the question sets and their real query embeddings (cached)."""
    texts: list[str] = []
    for path in QUESTION_FILES:
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                q = " ".join(json.loads(line)["q"].split())
                if q not in texts:
                    texts.append(q)
    rng = np.random.default_rng(2)
    texts = [texts[i] for i in sorted(rng.choice(len(texts), min(limit, len(texts)), False))]
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"queries-{len(texts)}.npy"
    if path.exists():
        return texts, np.load(path)
    from rag.embeddings import Embedder

    vectors = Embedder(Settings.from_env()).embed_queries(texts)
    np.save(path, vectors)
    return texts, vectors


# --- generated passages ------------------------------------------------------------------
def generate(n: int, windows: list[dict], base: np.ndarray, seed: int = 3):
    """``n`` passages and vectors: a base window (sentence order sometimes changed), often
    with a sentence of another window, names and numbers swapped in from other articles,
    clauses sometimes reordered; vector = sources' vectors + noise, normalised."""
    rng = np.random.default_rng(seed)
    names = sorted({m for w in windows for s in w["sentences"] for m in _NAME.findall(s)})
    numbers = sorted({m for w in windows for s in w["sentences"] for m in _NUMBER.findall(s)})
    primary = rng.integers(0, len(windows), n)
    secondary = rng.integers(0, len(windows), n)
    appended = rng.random(n) < 0.5
    texts: list[str] = []
    titles: list[str] = []
    for i in range(n):
        w = windows[primary[i]]
        sentences = list(w["sentences"])
        if rng.random() < 0.3:
            sentences.reverse()
        if appended[i]:
            extra = windows[secondary[i]]["sentences"]
            sentences.append(extra[int(rng.integers(len(extra)))])
        text = " ".join(_reorder_clauses(s, rng) for s in sentences)
        text = _NAME.sub(lambda m: _swap(m, names, rng, 0.3), text)
        text = _NUMBER.sub(lambda m: _swap(m, numbers, rng, 0.5), text)
        texts.append(text)
        titles.append(w["title"])
    vectors = np.empty((n, base.shape[1]), dtype=np.float32)
    step = 50_000
    for i in range(0, n, step):
        m = min(step, n - i)
        block = base[primary[i : i + m]].copy()
        weight = rng.uniform(0.0, 0.5, (m, 1)).astype(np.float32)
        block = (1 - weight) * block + weight * base[secondary[i : i + m]]
        block += NOISE / np.sqrt(base.shape[1]) * rng.standard_normal(block.shape, np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        vectors[i : i + m] = block
    return texts, titles, vectors


def _reorder_clauses(sentence: str, rng: np.random.Generator) -> str:
    parts = sentence.rstrip(".!?").split(", ")
    if len(parts) < 3 or rng.random() > 0.2:
        return sentence
    i = int(rng.integers(1, len(parts) - 1))
    parts[i], parts[i + 1] = parts[i + 1], parts[i]
    return ", ".join(parts) + sentence[len(sentence.rstrip(".!?")) :]


def _swap(match: re.Match, pool: list[str], rng: np.random.Generator, p: float) -> str:
    return pool[int(rng.integers(len(pool)))] if rng.random() < p else match.group(0)


def prepare(n: int, windows, base) -> Path:
    """Generated passages of size ``n`` on disk (texts, titles, vectors), once."""
    folder = DATA / f"passages-{n}"
    made_from = f"{len(windows)} base passages, noise {NOISE}"
    if (folder / "vectors.npy").exists() and (folder / "base.txt").read_text() == made_from:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    texts, titles, vectors = generate(n, windows, base)
    tmp = DATA / f".passages-{n}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with (tmp / "passages.jsonl").open("w", encoding="utf-8") as fh:
        for text, title in zip(texts, titles, strict=True):
            fh.write(json.dumps([title, text], ensure_ascii=False) + "\n")
    np.save(tmp / "vectors.npy", vectors)
    (tmp / "base.txt").write_text(made_from)
    os.replace(tmp, folder)
    log(f"generated {n:,} passages in {time.perf_counter() - started:.0f} s")
    return folder


def exact_neighbours(folder: Path, queries: np.ndarray, depth: int) -> Path:
    """Exact top-``depth`` rows for each query (FAISS flat inner product), cached."""
    path = folder / f"exact-{len(queries)}-{depth}.npz"
    if path.exists():
        return path
    import faiss

    vectors = np.load(folder / "vectors.npy", mmap_mode="r")
    best_s = np.full((len(queries), depth), -np.inf, dtype=np.float32)
    best_r = np.zeros((len(queries), depth), dtype=np.int64)
    step = 200_000
    for i in range(0, len(vectors), step):
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(np.ascontiguousarray(vectors[i : i + step]))
        s, r = index.search(queries, depth)
        all_s, all_r = np.hstack([best_s, s]), np.hstack([best_r, r + i])
        order = np.argsort(-all_s, axis=1, kind="stable")[:, :depth]
        best_s = np.take_along_axis(all_s, order, 1)
        best_r = np.take_along_axis(all_r, order, 1)
    np.savez(path, rows=best_r, scores=best_s)
    return path


# --- building through the stores' real write ---------------------------------------------
def file_of(row: int) -> tuple[str, int]:
    return f"gen/{row // PER_FILE:07d}.txt", row % PER_FILE


def new_build(folder: Path, dimension: int, vectors: np.ndarray):
    """One NewBuild holding every generated passage (a full build)."""
    from rag.store import NewBuild

    docs, documents, embedded = [], {}, {}
    started = time.time()
    with (folder / "passages.jsonl").open(encoding="utf-8") as fh:
        lines = iter(fh)
        for first in range(0, len(vectors), PER_FILE):
            rows = range(first, min(first + PER_FILE, len(vectors)))
            file = file_of(first)[0]
            chunks, offset, title = [], 0, ""
            for row in rows:
                title, text = json.loads(next(lines))
                title = sys.intern(title)
                chunks.append(Chunk(file, title, row - first, offset, offset + len(text), text))
                offset += len(text) + 1
            sha = hashlib.sha256(file.encode()).hexdigest()
            # the article text is not kept: stores read only file and title of a Document
            docs.append(Document(file, "", "utf-8", sha, title, []))
            documents[file] = {
                "sha256": sha,
                "title": title,
                "encoding": "utf-8",
                "format": "text",
                "date": None,
                "source": "",
                "author": "",
                "language": "ru",
                "chunks": len(chunks),
                "indexed_at": "",
            }
            embedded[file] = (chunks, vectors[first : first + len(chunks)])
    build_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started)) + f"-{os.getpid()}"
    return NewBuild(
        build_id=build_id,
        started=started,
        signature={"bench": "store_scale"},
        docs=docs,
        documents=documents,
        embedded=embedded,
        reused=[],
        removed=[],
        full=True,
        dimension=dimension,
        embedding_model=Settings().embedding_model,
        embedding_dtype="bench",
    )


def settings_for(store: str, n: int, url: str | None, ef: int = 0) -> Settings:
    return Settings.from_env(
        corpus_dir=ROOT / "corpus",
        index_dir=DATA / f"index-{n}",
        database_url=url if store == "postgres" else "",
        **({"ann_ef_search": ef} if ef else {}),
    )


def build(store_name: str, n: int, url: str | None) -> dict:
    from rag.store import open_store

    folder = DATA / f"passages-{n}"
    vectors = np.load(folder / "vectors.npy", mmap_mode="r")
    started = time.perf_counter()
    nb = new_build(folder, vectors.shape[1], vectors)
    prepared = time.perf_counter() - started
    log(f"  {store_name} {n:,}: build object ready in {prepared:.0f} s")
    settings = settings_for(store_name, n, url)
    if store_name == "embedded":
        shutil.rmtree(settings.index_dir, ignore_errors=True)
    store = open_store(settings)
    stop = threading.Event()
    server = {"pss": 0.0}
    if store_name == "postgres":
        threading.Thread(target=_watch_postgres, args=(url, stop, server), daemon=True).start()
    started = time.perf_counter()
    with store.locked():
        store.begin()
        kind = store.write(nb, None, lambda step: log(f"  step: {step}"))
    seconds = time.perf_counter() - started
    stop.set()
    result = {
        "store": store_name,
        "n": n,
        "kind": kind,
        "build_s": round(seconds, 1),
        "prepare_s": round(prepared, 1),
        "builder_rss_gb": peak_rss_gb(),
    }
    if store_name == "embedded":
        size = sum(p.stat().st_size for p in settings.index_dir.rglob("*") if p.is_file())
        result["disk_gb"] = round(size / 1e9, 2)
    else:
        result["server_pss_gb"] = round(server["pss"], 2)
        result["disk_gb"] = round(_pg_size(url) / 1e9, 2)
    return result


def _postgres_pss(url: str) -> float:
    """Summed PSS (shared memory counted once) of the server's processes, GB."""
    import psutil

    pid = int((DATA / "pgdata" / "postmaster.pid").read_text().split()[0])
    main = psutil.Process(pid)
    total = 0
    for proc in [main, *main.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_full_info().pss
    return total / 2**30


def _watch_postgres(url: str, stop: threading.Event, server: dict) -> None:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    last = 0.0
    while not stop.wait(5):
        server["pss"] = max(server["pss"], _postgres_pss(url))
        if time.time() - last > 60:
            last = time.time()
            rows = conn.execute(
                "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total"
                " FROM pg_stat_progress_create_index"
            ).fetchall()
            state = (
                rows[0]
                if rows
                else conn.execute(
                    "SELECT left(query, 60) FROM pg_stat_activity WHERE state = 'active'"
                    " AND query NOT LIKE '%pg_stat%'"
                ).fetchall()
            )
            log(f"  [{time.strftime('%H:%M:%S')}] server {server['pss']:.1f} GB: {state}")
    conn.close()


def _pg_size(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


# --- searching through the Retriever -----------------------------------------------------
class QueryVectors:
    """Stands in for the embedder: the real query embeddings, computed beforehand."""

    def __init__(self, texts: list[str], vectors: np.ndarray):
        self.vectors = dict(zip(texts, vectors, strict=True))

    def embed_queries(self, texts):
        return np.stack([self.vectors[t] for t in texts])


class FixedStore:
    """A store that always serves one snapshot."""

    def __init__(self, snapshot):
        self.snapshot = snapshot

    def current_build_id(self):
        return self.snapshot.build_id

    def load(self):
        return self.snapshot


class ExactDense:
    """A snapshot whose dense search is exact (precomputed flat search)."""

    def __init__(self, snapshot, exact: dict[bytes, list[tuple[int, float]]]):
        self.snapshot, self.exact = snapshot, exact
        self.manifest = snapshot.manifest
        self.build_id = snapshot.build_id

    def __len__(self):
        return len(self.snapshot)

    def __getattr__(self, name):
        return getattr(self.snapshot, name)

    def dense_search(self, query, depth):
        return self.exact[np.asarray(query, np.float32).tobytes()][:depth]


def search(store_name: str, n: int, url: str | None, queries: int, ef: int) -> dict:
    from rag import pgstore
    from rag.retrieve import Retriever
    from rag.store import open_store

    texts, qvecs = questions(queries)
    settings = settings_for(store_name, n, url, ef)  # ef 0: the setting's default
    started = time.perf_counter()
    snapshot = open_store(settings).load()
    load_s = time.perf_counter() - started
    offset = 1 if store_name == "postgres" else 0  # PostgreSQL ids count from 1
    sample = [0, n // 2, n - 1]
    found = snapshot.lookup([r + offset for r in sample])
    assert all((found[r + offset].file, found[r + offset].chunk) == file_of(r) for r in sample)
    depth = max(settings.candidates, 30)
    ex = np.load(exact_neighbours(DATA / f"passages-{n}", qvecs, depth))
    exact = {
        q.tobytes(): [(int(r) + offset, float(s)) for r, s in zip(rows, scores, strict=True)]
        for q, rows, scores in zip(qvecs, ex["rows"], ex["scores"], strict=True)
    }
    embedder = QueryVectors(texts, qvecs)
    approx = Retriever(settings, embedder, FixedStore(snapshot))
    exact_r = Retriever(settings, embedder, FixedStore(ExactDense(snapshot, exact)))

    for q in texts[:10]:  # warm-up
        approx.search(q, k=10, mode="hybrid", merge=False)
    rows_cap = pgstore.LEXICAL_ROWS
    hybrid_ms, dense_ms, lexical_ms, recall, overlap = [], [], [], [], []
    lexical_all_ms: list[float] = []
    for q, v in zip(texts, qvecs, strict=True):
        t0 = time.perf_counter()
        hits = approx.search(q, k=10, mode="hybrid", merge=False)
        t1 = time.perf_counter()
        with snapshot.reading():
            dense = snapshot.dense_search(v, 10)
        t2 = time.perf_counter()
        with snapshot.reading():
            snapshot.lexical_search(q, depth)
        t3 = time.perf_counter()
        # every matching row ranked, as before LEXICAL_ROWS (50 queries: seconds each at 1M)
        if store_name == "postgres" and len(lexical_all_ms) < 50:
            pgstore.LEXICAL_ROWS = 0
            with snapshot.reading():
                snapshot.lexical_search(q, depth)
            pgstore.LEXICAL_ROWS = rows_cap
            lexical_all_ms.append(1000 * (time.perf_counter() - t3))
        hybrid_ms.append(1000 * (t1 - t0))
        dense_ms.append(1000 * (t2 - t1))
        lexical_ms.append(1000 * (t3 - t2))
        truth = {r for r, _ in exact[v.tobytes()][:10]}
        recall.append(len(truth & {r for r, _ in dense}) / 10)
        best = {(h.file, h.chunk) for h in exact_r.search(q, k=10, mode="hybrid", merge=False)}
        overlap.append(len(best & {(h.file, h.chunk) for h in hits}) / max(1, len(best)))

    def pct(xs, p):
        return round(float(np.percentile(xs, p)), 1)

    return {
        "store": store_name,
        "n": n,
        "queries": len(texts),
        "load_s": round(load_s, 1),
        "hybrid_p50": pct(hybrid_ms, 50),
        "hybrid_p95": pct(hybrid_ms, 95),
        "dense_p95": pct(dense_ms, 95),
        "lexical_p50": pct(lexical_ms, 50),
        "lexical_p95": pct(lexical_ms, 95),
        "lexical_all_p95": pct(lexical_all_ms, 95) if lexical_all_ms else None,
        "recall10": round(float(np.mean(recall)), 3),
        "hybrid_overlap10": round(float(np.mean(overlap)), 3),
        "search_rss_gb": peak_rss_gb(),
    }


# --- the PostgreSQL server ---------------------------------------------------------------
def start_postgres(maintenance_gb: int, shared_gb: int):
    """A local PostgreSQL with pgvector (the pgserver wheel) tuned for bulk index builds."""
    import pgserver

    data = DATA / "pgdata"
    server = pgserver.get_server(data, cleanup_mode="stop")
    server.psql(f"ALTER SYSTEM SET shared_buffers = '{shared_gb}GB';")
    server.psql(f"ALTER SYSTEM SET maintenance_work_mem = '{maintenance_gb}GB';")
    server.psql("ALTER SYSTEM SET max_parallel_maintenance_workers = 2;")
    server.psql("ALTER SYSTEM SET max_wal_size = '8GB';")
    server.cleanup()  # restart for shared_buffers
    return pgserver.get_server(data, cleanup_mode="stop")


def database_url(server, n: int, fresh: bool) -> str:
    from urllib.parse import parse_qs, urlparse

    name = f"rag_scale_{n}"
    if fresh:
        server.psql(f"DROP DATABASE IF EXISTS {name};")
        server.psql(f"CREATE DATABASE {name};")
    socket_dir = parse_qs(urlparse(server.get_uri()).query)["host"][0]
    return f"postgresql://postgres@/{name}?host={socket_dir}"


def available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("inf")


def child(args: list[str], floor_gb: float) -> dict:
    """Run one step in a fresh process; its JSON result. The step is stopped if the
    machine's available memory falls below ``floor_gb`` (the machine has no swap, and it is
    shared: better a missing figure than another job killed)."""
    cmd = [sys.executable, __file__, *args]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        reader = threading.Thread(target=lambda: setattr(proc, "output", proc.stdout.read()))
        reader.start()
        while proc.poll() is None:
            if available_gb() < floor_gb:
                proc.kill()
                raise RuntimeError(f"stopped {args}: less than {floor_gb} GB of memory left")
            time.sleep(1)
        reader.join()
    if proc.returncode:
        raise RuntimeError(f"{args} failed with exit code {proc.returncode}")
    return json.loads(proc.output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000", help="comma-separated passage counts")
    parser.add_argument("--stores", default="embedded,postgres")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--base", type=int, default=3000, help="real passages embedded")
    parser.add_argument(
        "--base-index",
        help="comma-separated built index folders whose chunks and stored embeddings are the "
        "base passages (instead of embedding sentence windows)",
    )
    parser.add_argument("--maintenance-gb", type=int, default=6)
    parser.add_argument("--shared-gb", type=int, default=2)
    parser.add_argument(
        "--ef-search", default="0", help="comma-separated HNSW ef_search values (0: the store's)"
    )
    parser.add_argument("--memory-floor-gb", type=float, default=1.5)
    parser.add_argument(
        "--search-only", action="store_true", help="measure the stores built by an earlier run"
    )
    parser.add_argument("--step", choices=["build", "search"], help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:  # a child process
        n = int(args.sizes)
        if args.step == "build":
            result = build(args.store, n, args.url)
        else:
            result = search(args.store, n, args.url, args.queries, int(args.ef_search))
        print(json.dumps(result))
        return

    if args.base_index:
        windows, base = indexed_passages([Path(p) for p in args.base_index.split(",")])
    else:
        windows, base = base_set(args.base)
    texts, qvecs = questions(args.queries)
    print(
        f"{len(windows)} real base passages embedded, {len(texts)} real questions; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    stores = args.stores.split(",")
    server = start_postgres(args.maintenance_gb, args.shared_gb) if "postgres" in stores else None
    results = []
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            folder = prepare(n, windows, base)
            exact_neighbours(folder, qvecs, 30)
            for store in stores:
                fresh = not args.search_only
                url = database_url(server, n, fresh) if store == "postgres" else ""
                common = ["--sizes", str(n), "--store", store, "--url", url]
                row = {"store": store, "n": n}
                if fresh:
                    row = child(["--step", "build", *common], args.memory_floor_gb)
                    print(json.dumps(row), flush=True)
                for ef in args.ef_search.split(","):
                    query = ["--step", "search", "--queries", str(args.queries), "--ef-search", ef]
                    measured = row | child([*query, *common], args.memory_floor_gb)
                    measured |= {
                        "ef": int(ef) or Settings().ann_ef_search,
                        "load_avg": round(os.getloadavg()[0], 1),
                    }
                    print(json.dumps(measured), flush=True)
                    results.append(measured)
    finally:
        if server is not None:
            server.cleanup()
    print(
        "| passages | store | build s | disk GB | builder peak GB | hybrid p50 ms "
        "| hybrid p95 ms | dense p95 ms | lexical p95 ms | dense recall@10 "
        "| hybrid overlap@10 | ef |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        memory = f"{r.get('builder_rss_gb', '–')}"
        if "server_pss_gb" in r:
            memory += f" + server {r['server_pss_gb']}"
        print(
            f"| {r['n']:,} | {r['store']} ({r.get('kind', '–')}) | {r.get('build_s', '–')} "
            f"| {r.get('disk_gb', '–')} | {memory} | {r['hybrid_p50']} | {r['hybrid_p95']} "
            f"| {r['dense_p95']} | {r['lexical_p95']} | {r['recall10']} "
            f"| {r['hybrid_overlap10']} | {r['ef']} |"
        )


if __name__ == "__main__":
    main()
