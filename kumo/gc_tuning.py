"""The garbage collector's and the C allocator's settings for kumo's long-running processes (API
workers, schedulers)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading

# A page of 1,000 servers builds tens of thousands of objects: with CPython's default collector
# thresholds (700, 10, 10) that triggers full collections inside requests and inside scheduling
# passes. With these, no full collection runs inside a request (bench/server_list.py measures the
# page with and without).
GC_THRESHOLDS = (50_000, 20, 20)


# With those thresholds a full collection comes after some 20 million allocations, and garbage
# in reference cycles that reached the oldest generation waits for it: SQLAlchemy statements are
# cycles (a bind parameter and its comparator), and whatever is alive across the young
# collections, as everything a request holds may be, gets old, and the RSS keeps the high-water
# mark of such a pile. API workers therefore also collect in full on this timer
# (collect_periodically), on a thread of their own (docs/benchmarks.md, "API worker memory").
FULL_COLLECTION_SECONDS = 10.0


def tune_gc() -> None:
    """Collect the young generation less often, and keep what startup made (modules, routes,
    mappers) out of every future collection."""
    gc.collect()  # nothing collectable gets frozen
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


# glibc's mallopt parameter for the most allocation arenas a process keeps.
_M_ARENA_MAX = -8
# glibc gives each new thread that allocates an arena of its own while there are fewer than eight
# per core, and memory freed in one arena serves only that arena. An API worker runs its routes on up
# to 256 threads, so without a cap its RSS grows with the threads that ever allocated.
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's allocation arenas (what MALLOC_ARENA_MAX sets; an operator's own setting of it
    wins). Call it before the process starts its threads. Returns whether the cap is set here;
    False where the C library is not glibc."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))


def collect_periodically(stop: threading.Event, every: float = FULL_COLLECTION_SECONDS) -> threading.Thread:
    """A daemon thread that runs a full collection every `every` seconds until `stop` is set."""

    def loop() -> None:
        while not stop.wait(every):
            gc.collect()

    thread = threading.Thread(target=loop, name="kumo-gc", daemon=True)
    thread.start()
    return thread
