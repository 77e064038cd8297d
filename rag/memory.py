"""Giving freed heap memory back to the system in the long-running server.

The server frees memory after every answer (prompts, token lists, embedding batches of
varying shape), but glibc keeps freed chunks inside its heap, so the resident size of a
server that answers for hours creeps up without any live object behind it (measured in
docs/measurements.md: Python's own objects grew by well under 1 MB per minute while the
process grew by 3-9 MB per minute; ``malloc_trim`` brought it back). A daemon thread
calls ``malloc_trim(0)`` every ``every_s`` seconds; it takes a few milliseconds and
holds no Python lock meanwhile (ctypes releases the GIL). Elsewhere than glibc it does
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger(__name__)


def _glibc_trim():
    """``malloc_trim`` of the C library, or None when it is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def trim() -> bool:
    """Return free heap memory to the system now; False where that is not possible."""
    malloc_trim = _glibc_trim()
    if malloc_trim is None:
        return False
    malloc_trim(0)
    return True


def start_trimmer(every_s: float) -> threading.Thread | None:
    """A daemon thread trimming every ``every_s`` seconds (None: off, or not glibc)."""
    malloc_trim = _glibc_trim()
    if every_s <= 0 or malloc_trim is None:
        return None
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            malloc_trim(0)

    thread = threading.Thread(target=loop, name="memory-trim", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    log.info("freed memory returned to the system every %.0f s", every_s)
    return thread
