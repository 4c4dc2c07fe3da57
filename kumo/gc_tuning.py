"""The garbage collector's and the C allocator's settings for kumo's long-running processes (API
workers, schedulers)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading

# A page of 1,000 servers builds tens of thousands of objects: with CPython's default collector
# thresholds (700, 10, 10) that triggers full collections inside requests (bench/server_list.py
# on a quiet machine: p95 211 ms with them, 94 ms with these). A full collection of a scheduler
# process costs 20-50 ms, five lone scheduling passes.
GC_THRESHOLDS = (50_000, 20, 20)


# With those thresholds a full collection comes after some 20 million allocations, and garbage
# in reference cycles that reached the oldest generation waits for it: SQLAlchemy statements are
# cycles (a bind parameter and its comparator), and whatever is alive across the young
# collections, as everything a request holds may be, gets old. In a LINE-size density run an API
# worker piled up 1.3 million such blocks between full collections and its RSS kept that
# high-water mark: 245 MB, against 188 MB collecting on this timer (collect_periodically), whose
# collections took 10-21 ms (median; at most 99 ms), 0.2 % of a core (docs/benchmarks.md, "API
# worker memory, session 8").
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
# to 256 threads: in short density runs (10,000 hypervisors, 20,000 servers) a worker grew 35-40 MB
# from the 10,000th server to the 20,000th with glibc's default, 13.5 and 25.8 MB with two arenas
# (docs/benchmarks.md, "LINE size through the API, session 7").
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
