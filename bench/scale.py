"""FAISS at scale: exact vs HNSW vs IVF-PQ on synthetic vectors of the model's dimension.

    .venv/bin/python bench/scale.py --sizes 100000,1000000

For each size it prints build time, index memory, single-query latency p50/p95
and recall@10 of each approximate index against exact search. The vectors are a
normalised Gaussian mixture (clustered like real embeddings, unlike uniform noise).
These numbers justify ``rag.index.choose_faiss_kind``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.index import make_faiss_index


def mixture(n: int, dim: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    step = 50_000
    for i in range(0, n, step):
        m = min(step, n - i)
        which = rng.integers(0, len(centers), m)
        block = centers[which] + 0.6 * rng.standard_normal((m, dim), dtype=np.float32) / np.sqrt(
            dim
        )
        out[i : i + m] = block
    faiss.normalize_L2(out)
    return out


def latency(index: faiss.Index, queries: np.ndarray, k: int = 10) -> tuple[float, float]:
    times = []
    for q in queries:
        started = time.perf_counter()
        index.search(q[None, :], k)
        times.append(time.perf_counter() - started)
    arr = np.asarray(times) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000", help="comma-separated vector counts")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--kinds", default="flat,hnsw,ivfpq")
    args = parser.parse_args()
    faiss.omp_set_num_threads(os.cpu_count() or 2)
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((2000, args.dim), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    queries = mixture(args.queries, args.dim, rng, centers)
    print(f"{os.cpu_count()} cores, dim {args.dim}, {args.queries} single queries, k=10")
    print("| vectors | index | build s | memory MB | p50 ms | p95 ms | recall@10 |")
    print("|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        data = mixture(n, args.dim, rng, centers)
        exact = None
        for kind in args.kinds.split(","):
            started = time.perf_counter()
            index = make_faiss_index(data, kind)
            build = time.perf_counter() - started
            memory = len(faiss.serialize_index(index)) / 1e6
            p50, p95 = latency(index, queries)
            _, found = index.search(queries, 10)
            if kind == "flat":
                exact = found
            recall = (
                np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)])
                if exact is not None
                else float("nan")
            )
            row = f"| {n:,} | {kind} | {build:.1f} | {memory:.0f} | {p50:.2f} | {p95:.2f}"
            print(f"{row} | {recall:.3f} |", flush=True)
            del index


if __name__ == "__main__":
    main()
