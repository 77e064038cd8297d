"""The server's memory trimmer gives freed heap memory back to the system (glibc)."""

from __future__ import annotations

import ctypes
import ctypes.util
import time

import pytest

from rag.memory import start_trimmer, trim

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
pytestmark = pytest.mark.skipif(not hasattr(libc, "malloc_trim"), reason="glibc only")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def fragmented_heap(chunks: int = 3000, size: int = 64 * 1024) -> int:
    """Fill ~190 MB of heap with small blocks and free all but the last: the heap cannot
    shrink from its top, so the freed pages stay resident until trimmed."""
    blocks = [libc.malloc(size) for _ in range(chunks)]
    for block in blocks:
        ctypes.memset(block, 1, size)
    for block in blocks[:-1]:
        libc.free(block)
    return blocks[-1]


def test_trim_returns_freed_heap_pages():
    kept = fragmented_heap()
    before = rss_mb()
    assert trim()
    after = rss_mb()
    libc.free(kept)
    assert before - after > 100, (before, after)


def test_the_trimmer_thread_trims_on_its_own():
    assert start_trimmer(0) is None  # off
    kept = fragmented_heap()
    before = rss_mb()
    thread = start_trimmer(0.05)
    try:
        deadline = time.time() + 5
        while rss_mb() > before - 100 and time.time() < deadline:
            time.sleep(0.05)
        assert before - rss_mb() > 100
    finally:
        thread.stop.set()
        libc.free(kept)
