"""The metadata edge cache: one backend read per instance per expiry (single flight), expiry,
the bound, failures not cached, and the cache turned off."""

from __future__ import annotations

import asyncio

import pytest

from kumo.metadata.bundle import Bundle
from kumo.metadata.cache import BundleCache
from tests.unit.metadata.builders import bundle


class Backend:
    """A fetch that counts its reads and holds them until released."""

    def __init__(self) -> None:
        self.reads: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def __call__(self, uuid: str) -> Bundle | None:
        self.reads.append(uuid)
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("API down")
        return None if uuid == "gone" else bundle(uuid=uuid)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_misses_share_one_read() -> None:
    async def scenario() -> None:
        backend = Backend()
        backend.gate.clear()
        cache = BundleCache(backend, ttl=15)
        waiters = [asyncio.create_task(cache.get("a")) for _ in range(50)]
        await asyncio.sleep(0.01)
        assert backend.reads == ["a"]
        backend.gate.set()
        entries = await asyncio.gather(*waiters)
        assert {id(e) for e in entries} == {id(entries[0])}
        assert entries[0].bundle is not None and entries[0].bundle.uuid == "a"
        assert cache.fresh("a") is entries[0] and backend.reads == ["a"]

    asyncio.run(scenario())


def test_a_waiter_that_goes_away_does_not_cancel_the_read() -> None:
    async def scenario() -> None:
        backend = Backend()
        backend.gate.clear()
        cache = BundleCache(backend, ttl=15)
        first = asyncio.create_task(cache.get("a"))
        await asyncio.sleep(0.01)
        first.cancel()  # its guest hung up
        second = asyncio.create_task(cache.get("a"))
        await asyncio.sleep(0.01)
        backend.gate.set()
        entry = await second
        assert entry.bundle is not None and backend.reads == ["a"] and cache.fresh("a") is entry

    asyncio.run(scenario())


def test_entries_expire_after_the_ttl() -> None:
    async def scenario() -> None:
        backend, clock = Backend(), Clock()
        cache = BundleCache(backend, ttl=15, clock=clock)
        await cache.get("a")
        clock.now += 14.9
        await cache.get("a")
        assert backend.reads == ["a"]
        clock.now += 0.2
        assert cache.fresh("a") is None
        await cache.get("a")
        assert backend.reads == ["a", "a"]

    asyncio.run(scenario())


def test_the_least_recently_used_entry_goes_first() -> None:
    async def scenario() -> None:
        backend = Backend()
        cache = BundleCache(backend, ttl=15, max_entries=2)
        await cache.get("a")
        await cache.get("b")
        await cache.get("a")  # a is now the most recent
        await cache.get("c")
        assert len(cache) == 2
        assert cache.fresh("a") is not None and cache.fresh("b") is None and cache.fresh("c") is not None

    asyncio.run(scenario())


def test_a_failed_read_reaches_every_waiter_and_is_not_cached() -> None:
    async def scenario() -> None:
        backend = Backend()
        backend.gate.clear()
        backend.fail = True
        cache = BundleCache(backend, ttl=15)
        waiters = [asyncio.create_task(cache.get("a")) for _ in range(3)]
        await asyncio.sleep(0.01)
        backend.gate.set()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results) and backend.reads == ["a"]
        backend.fail = False
        entry = await cache.get("a")
        assert entry.bundle is not None and backend.reads == ["a", "a"]

    asyncio.run(scenario())


def test_an_unknown_instance_is_cached_as_absent() -> None:
    async def scenario() -> None:
        backend = Backend()
        cache = BundleCache(backend, ttl=15)
        assert (await cache.get("gone")).answer("/openstack") is None
        await cache.get("gone")
        assert backend.reads == ["gone"]

    asyncio.run(scenario())


def test_ttl_zero_reads_the_backend_every_time() -> None:
    async def scenario() -> None:
        backend = Backend()
        cache = BundleCache(backend, ttl=0)
        for _ in range(3):
            await cache.get("a")
        assert backend.reads == ["a", "a", "a"] and cache.fresh("a") is None and len(cache) == 0

    asyncio.run(scenario())


def test_answers_are_rendered_once_per_entry() -> None:
    async def scenario() -> None:
        entry = await BundleCache(Backend(), ttl=15).get("a")
        first = entry.answer("/openstack/latest/meta_data.json")
        assert first is not None and first.status == 200
        assert entry.answer("/openstack/latest/meta_data.json") is first

    asyncio.run(scenario())


def test_a_cache_needs_room() -> None:
    with pytest.raises(ValueError):
        BundleCache(Backend(), max_entries=0)
