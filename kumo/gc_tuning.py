"""The garbage collector's settings for kumo's long-running processes (API workers, schedulers)."""

from __future__ import annotations

import gc

# A page of 1,000 servers builds tens of thousands of objects: with CPython's default collector
# thresholds (700, 10, 10) that triggers full collections inside requests (bench/server_list.py
# on a quiet machine: p95 211 ms with them, 94 ms with these). A full collection of a scheduler
# process costs 20-50 ms, five lone scheduling passes.
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """Collect the young generation less often, and keep what startup made (modules, routes,
    mappers) out of every future collection."""
    gc.collect()  # nothing collectable gets frozen
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
