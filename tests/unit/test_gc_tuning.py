"""kumo.gc_tuning: the cap on glibc's allocation arenas that API workers and schedulers set at
start (each case in a fresh interpreter: an arena, once made, stays), and an API worker's timed
full collection."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import pytest

from kumo.gc_tuning import collect_periodically

# Eight threads, alive together, each allocating outside Python's small-object allocator; then
# glibc's own account of its heaps (malloc_info writes one <heap nr=...> per arena).
SCRIPT = textwrap.dedent(
    """
    import ctypes, ctypes.util, sys, tempfile, threading
    from kumo.gc_tuning import limit_malloc_arenas
    print(limit_malloc_arenas() if sys.argv[1] == "limit" else "unset")
    barrier = threading.Barrier(8)
    kept = []
    def work():
        kept.append(bytearray(1 << 16))
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile() as out:
        stream = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        print(open(out.name).read().count("<heap nr="))
    """
)


def _heaps(mode: str, env: dict[str, str]) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, env=env, check=True
    )
    said, heaps = done.stdout.split()
    return said, int(heaps)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_cap_keeps_threads_to_two_arenas() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _heaps("limit", env) == ("True", 2)
    said, uncapped = _heaps("none", env)
    assert said == "unset" and uncapped > 2  # glibc's default: an arena per thread, here


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_an_operators_own_setting_wins() -> None:
    env = {**os.environ, "MALLOC_ARENA_MAX": "4"}
    said, heaps = _heaps("limit", env)
    assert said == "False"
    assert 2 < heaps <= 4


class _Cycle:
    """An object in a reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_the_timed_collection_frees_cyclic_garbage_that_the_thresholds_leave() -> None:
    was_enabled = gc.isenabled()
    gc.disable()  # no collection by allocation counts: only the timer's
    try:
        garbage = _Cycle()
        gone = weakref.ref(garbage)
        del garbage
        assert gone() is not None  # a cycle: dropping the last name frees nothing
        stop = threading.Event()
        thread = collect_periodically(stop, every=0.02)
        try:
            for _ in range(250):
                if gone() is None:
                    break
                time.sleep(0.02)
            assert gone() is None
        finally:
            stop.set()
            thread.join(timeout=5)
        assert not thread.is_alive()
    finally:
        if was_enabled:
            gc.enable()
