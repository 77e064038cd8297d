"""Dense, lexical and hybrid (reciprocal rank fusion) search over the loaded index."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .embeddings import check_index_matches
from .index import IndexError_
from .settings import Settings
from .store import Snapshot, Store, open_store
from .stories import Stories
from .timefilter import Filters

log = logging.getLogger(__name__)

MODES = ("dense", "lexical", "hybrid")


@dataclass
class Hit:
    rank: int
    file: str
    title: str
    chunk: int
    start: int
    end: int
    score: float
    text: str
    dense_score: float | None = None  # cosine similarity, when the dense retriever saw it
    lexical_score: float | None = None
    chunks: tuple[int, ...] = ()  # chunk numbers merged into this hit
    date: str | None = None  # the article's publication date (ISO, or --MM-DD), None unknown
    source: str = ""  # the article's outlet, "" when unknown
    # the story's other copies (rag.stories): {file, title, date, source}, earliest first
    duplicates: tuple[dict, ...] = ()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["chunks"] = list(self.chunks)
        data["duplicates"] = [dict(d) for d in self.duplicates]
        return data


def rrf(rankings: list[tuple[list[int], float]], k: int) -> dict[int, float]:
    """Reciprocal rank fusion: sum of weight / (k + rank) over the rankings, rank from 1."""
    fused: dict[int, float] = {}
    for rows, weight in rankings:
        for rank, row in enumerate(rows, 1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return fused


def article_ranking(rows: list[int], article_of: Mapping[int, str] | Sequence[str]) -> list[str]:
    """Articles in the order of their best passage in one ranking."""
    return list(dict.fromkeys(article_of[row] for row in rows))


def hybrid_scores(
    rankings: list[tuple[list[int], float]],
    article_of: Mapping[int, str] | Sequence[str],
    k: int,
    article_weight: float,
) -> dict[int, float]:
    """Passage RRF plus ``article_weight`` times the RRF of the passage's article.

    Passage-level fusion alone rewards a passage that is second in both rankings over
    the article whose different passages are first in each; the article term lets
    agreement on the article count too.
    """
    fused = rrf(rankings, k)
    if article_weight > 0:
        articles = rrf([(article_ranking(rows, article_of), w) for rows, w in rankings], k)
        for row in fused:
            fused[row] += article_weight * articles[article_of[row]]
    return fused


def merge_neighbours(hits: list[Hit]) -> list[Hit]:
    """Join hits that are consecutive, overlapping chunks of one article into one passage.

    A merged passage takes the best score and the best rank of its parts.
    """
    by_file: dict[str, list[Hit]] = {}
    for hit in hits:
        by_file.setdefault(hit.file, []).append(hit)
    runs: list[list[Hit]] = []
    for file_hits in by_file.values():
        file_hits.sort(key=lambda h: h.chunk)
        run = [file_hits[0]]
        for hit in file_hits[1:]:
            prev = run[-1]
            if hit.chunk == prev.chunk + 1 and hit.start <= prev.end:
                run.append(hit)
            else:
                runs.append(run)
                run = [hit]
        runs.append(run)
    merged = [_join(run) for run in runs]
    merged.sort(key=lambda h: h.rank)
    for i, hit in enumerate(merged, 1):
        hit.rank = i
    return merged


def _join(run: list[Hit]) -> Hit:
    first = run[0]
    text, end = first.text, first.end
    for hit in run[1:]:  # consecutive chunks overlap: append only the new tail
        if hit.end > end:
            text += hit.text[end - hit.start :]
            end = hit.end
    best = min(run, key=lambda h: h.rank)
    return Hit(
        rank=best.rank,
        file=first.file,
        title=first.title,
        chunk=first.chunk,
        start=first.start,
        end=end,
        score=max(h.score for h in run),
        text=text,
        dense_score=_max_opt(*(h.dense_score for h in run)),
        lexical_score=_max_opt(*(h.lexical_score for h in run)),
        chunks=tuple(c for h in run for c in h.chunks),
        date=first.date,
        source=first.source,
        duplicates=first.duplicates,
    )


def _max_opt(*scores: float | None) -> float | None:
    values = [v for v in scores if v is not None]
    return max(values) if values else None


class Retriever:
    """Holds the embedder and the live index; picks up a new build after a rebuild."""

    def __init__(self, settings: Settings, embedder, store: Store | None = None):
        self.settings = settings
        self.embedder = embedder
        self.store = store if store is not None else open_store(settings)
        self._index: Snapshot | None = None
        self._failed_build: str | None = None  # a build that failed to load, not retried
        self.load_problem: str | None = None
        self._lock = threading.Lock()
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._stories: tuple[Snapshot, Stories] | None = None  # (loaded build, its stories)

    @property
    def index(self) -> Snapshot:
        """The live index, reloaded when the store names a different build.

        Once a build is loaded it lives in memory: if the files on disk are deleted or a
        newer build cannot be read, searches go on with the loaded copy and
        ``problem()`` says why (a rebuild clears it). Only the first load can fail.
        """
        live = self.store.current_build_id()
        index = self._index
        if index is None or (live is not None and live not in (index.build_id, self._failed_build)):
            with self._lock:
                if self._index is None or live not in (self._index.build_id, self._failed_build):
                    try:
                        self._index = self.store.load()
                        self._failed_build, self.load_problem = None, None
                    except IndexError_ as exc:
                        if self._index is None:
                            raise
                        log.warning("keeping the loaded index: %s", exc)
                        self._failed_build, self.load_problem = live, str(exc)
                index = self._index
        return index

    def problem(self) -> str | None:
        """Why the index on disk differs from the one in use, or None when all is well."""
        if self._index is None:
            return None
        self.index  # noqa: B018 - picks up a newer build first
        if self.load_problem:
            return self.load_problem
        return self._index.disk_problem()

    def stories(self, index: Snapshot) -> Stories:
        """The duplicate stories of ``index``'s build, read once per loaded build."""
        cached = self._stories
        if cached is None or cached[0] is not index:
            cached = self._stories = (index, Stories.from_manifest(index.manifest))
        return cached[1]

    def clear_cache(self) -> None:
        self._query_cache.clear()

    def embed_query(self, query: str) -> np.ndarray:
        vector = self._query_cache.get(query)
        if vector is None:
            vector = self.embedder.embed_queries([query])[0]
            self._query_cache[query] = vector
            if len(self._query_cache) > 256:
                self._query_cache.popitem(last=False)
        return vector

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: str | None = None,
        merge: bool = True,
        filters: Filters | None = None,
    ) -> list[Hit]:
        k = k or self.settings.top_k
        mode = mode or self.settings.search_mode
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        query = " ".join(query.split())
        if not query:
            return []
        index = self.index
        with index.reading():
            hits = self._ranked_hits(index, query, k, mode, filters)
        # one file per story: the earliest copy, or the one the filters name
        hits = self.stories(index).collapse(hits, index.manifest.get("documents", {}), filters)
        if not merge:
            return hits[:k]
        # Merge among the top hits, taking more until k distinct passages remain.
        n = k
        merged = merge_neighbours(hits[:n])
        while len(merged) < k and n < len(hits):
            n += 1
            merged = merge_neighbours(hits[:n])
        return merged[:k]

    def _ranked_hits(
        self, index: Snapshot, query: str, k: int, mode: str, filters: Filters | None
    ) -> list[Hit]:
        n = len(index)
        if n == 0:
            return []
        # a filter can drop most candidates: rank them all then
        depth = n if filters else min(n, max(self.settings.candidates, k * 3))
        dense: dict[int, float] = {}
        lexical: dict[int, float] = {}
        dense_rows: list[int] = []
        lexical_rows: list[int] = []
        if mode in ("dense", "hybrid"):
            vector = self.embed_query(query)
            check_index_matches(index.manifest, self.settings, self.embedder, vector)
            found = index.dense_search(vector, depth)
            dense_rows = [r for r, _ in found]
            dense = dict(found)
        if mode in ("lexical", "hybrid"):
            found = index.lexical_search(query, depth)
            lexical_rows = [r for r, _ in found]
            lexical = dict(found)
        chunks = index.lookup(list(dict.fromkeys(dense_rows + lexical_rows)))

        if mode == "dense":
            ranked = [(r, dense[r]) for r in dense_rows]
        elif mode == "lexical":
            ranked = [(r, lexical[r]) for r in lexical_rows]
        else:
            # Trust the lexical ranking as far as the query's words occur in the corpus:
            # an English question over Russian articles matches only numbers and names.
            lexical_weight = self.settings.lexical_weight * index.lexical_coverage(query)
            fused = hybrid_scores(
                [(dense_rows, self.settings.dense_weight), (lexical_rows, lexical_weight)],
                {row: c.file for row, c in chunks.items()},
                self.settings.rrf_k,
                self.settings.article_weight,
            )
            ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))

        if mode == "hybrid":  # a cosine for every hit: the evidence-strength signal
            missing = [row for row, _ in ranked if row not in dense]
            dense.update(index.similarities(self.embed_query(query), missing))
        documents = index.manifest.get("documents", {})
        if filters:  # a passage shared by exact copies passes when one of them does
            stories = self.stories(index)
            ranked = [
                (row, score)
                for row, score in ranked
                if stories.admitted(chunks[row].file, documents, filters)
            ]
        hits = []
        for rank, (row, score) in enumerate(ranked, 1):
            c = chunks[row]
            meta = documents.get(c.file, {})
            hits.append(
                Hit(
                    rank,
                    c.file,
                    c.title,
                    c.chunk,
                    c.start,
                    c.end,
                    score,
                    c.text,
                    dense.get(row),
                    lexical.get(row),
                    (c.chunk,),
                    meta.get("date"),
                    meta.get("source", ""),
                )
            )
        return hits
