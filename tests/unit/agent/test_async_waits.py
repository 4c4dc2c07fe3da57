"""An idle long poll waits on the event loop (kumo.agent.routes.AsyncWaits), woken by
Waker.wake from any thread, without holding a worker thread."""

from __future__ import annotations

import asyncio
import threading
import time

from kumo.agent.routes import AsyncWaits
from kumo.runtime import Waker


def test_a_wake_from_another_thread_ends_the_wait() -> None:
    waker = Waker()
    waits = AsyncWaits(waker)

    async def scenario() -> tuple[bool, float]:
        seen = waker.seq("h1")
        threading.Timer(0.1, waker.wake, args=("h1",)).start()
        started = time.monotonic()
        woken = await waits.wait("h1", seen, 5.0)
        return woken, time.monotonic() - started

    woken, waited = asyncio.run(scenario())
    assert woken and waited < 2.0


def test_other_keys_do_not_wake_and_the_wait_times_out() -> None:
    waker = Waker()
    waits = AsyncWaits(waker)

    async def scenario() -> bool:
        seen = waker.seq("h1")
        threading.Timer(0.05, waker.wake, args=("h2",)).start()
        return await waits.wait("h1", seen, 0.3)

    assert asyncio.run(scenario()) is False
    assert waits._waiters == {}  # nothing left registered


def test_a_wake_before_the_wait_is_not_lost() -> None:
    waker = Waker()
    waits = AsyncWaits(waker)
    seen = waker.seq("h1")
    waker.wake("h1")
    assert asyncio.run(waits.wait("h1", seen, 5.0)) is True


def test_stop_ends_the_waits_of_every_key_and_those_to_come() -> None:
    waker = Waker()
    waits = AsyncWaits(waker)

    async def scenario() -> tuple[list[bool], float, bool]:
        threading.Timer(0.1, waker.stop).start()
        started = time.monotonic()
        woken = await asyncio.gather(*(waits.wait(key, waker.seq(key), 5.0) for key in ("h1", "h2", "h3")))
        waited = time.monotonic() - started
        return list(woken), waited, await waits.wait("h4", waker.seq("h4"), 5.0)

    woken, waited, later = asyncio.run(scenario())
    assert woken == [True, True, True] and waited < 2.0 and later is True
    assert waker.stopping.is_set() and waits._waiters == {}
