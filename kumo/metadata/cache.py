"""The metadata edge cache: an instance's bundle read from the API once per expiry, shared by
every request of that instance (Workday's boot storm: 14 s a call without a cache, 0.2 s with).

Single flight: concurrent misses for one instance wait for one backend read. Bounded: the least
recently used entries go first. A failed read is not cached (its waiters all see the error);
"no such instance" is, for the same expiry, so a stray guest cannot make one read a request."""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kumo import metrics
from kumo.metadata.bundle import Bundle
from kumo.metadata.render import Answer, render

Fetch = Callable[[str], Awaitable[Bundle | None]]
Clock = Callable[[], float]
DEFAULT_TTL_SECONDS = 15.0  # Nova's [api] metadata_cache_expiration
DEFAULT_MAX_ENTRIES = 10_000
MEMO_PATHS = 64  # rendered answers kept per entry (cloud-init reads about 30 paths)


@dataclass
class Entry:
    """A fetched bundle (None: the API knows no such instance) and the answers rendered from it."""

    bundle: Bundle | None
    expires: float
    random_seed: bytes = field(default_factory=lambda: os.urandom(512))
    _answers: dict[str, Answer] = field(default_factory=dict)

    def answer(self, path: str) -> Answer | None:
        """The answer to `path`, rendered once per entry; None when there is no instance."""
        if self.bundle is None:
            return None
        found = self._answers.get(path)
        if found is None:
            found = render(self.bundle, path, self.random_seed)
            if found.status == 200 and len(self._answers) < MEMO_PATHS:
                self._answers[path] = found
        return found


def _retrieved(flight: asyncio.Future[Entry]) -> None:
    """Mark a failed read seen even when every waiter has gone (no asyncio warning)."""
    if not flight.cancelled():
        flight.exception()


class BundleCache:
    """`ttl` seconds per entry; `ttl=0` turns the cache off (every request reads the API: the
    uncached baseline of bench/metadata_storm.py)."""

    def __init__(
        self,
        fetch: Fetch,
        ttl: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._fetch = fetch
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._flights: dict[str, asyncio.Future[Entry]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def forget(self, uuid: str) -> None:
        """Drop an instance's entry (its next request reads the API again)."""
        self._entries.pop(uuid, None)

    def fresh(self, uuid: str) -> Entry | None:
        """The instance's entry if it is fresh, without waiting (the responder's fast path);
        counts a hit. None: call `get`."""
        if self.ttl <= 0:
            return None
        entry = self._entries.get(uuid)
        if entry is None or entry.expires <= self._clock():
            return None
        self._entries.move_to_end(uuid)
        metrics.METADATA_CACHE_HITS.inc()
        return entry

    async def get(self, uuid: str) -> Entry:
        if self.ttl <= 0:
            metrics.METADATA_CACHE_MISSES.inc()
            return await self._read(uuid)
        now = self._clock()
        entry = self._entries.get(uuid)
        if entry is not None and entry.expires > now:
            self._entries.move_to_end(uuid)
            metrics.METADATA_CACHE_HITS.inc()
            return entry
        metrics.METADATA_CACHE_MISSES.inc()
        flight = self._flights.get(uuid)
        if flight is None:
            # The read is a task of its own: a guest that hangs up (its request cancelled) does
            # not cancel the read the other requests of its instance wait for.
            flight = asyncio.ensure_future(self._fly(uuid))
            flight.add_done_callback(_retrieved)
            self._flights[uuid] = flight
        return await asyncio.shield(flight)

    async def _fly(self, uuid: str) -> Entry:
        try:
            entry = await self._read(uuid)
            self._store(uuid, entry)
            return entry
        finally:
            del self._flights[uuid]

    async def _read(self, uuid: str) -> Entry:
        metrics.METADATA_BACKEND_FETCHES.inc()
        bundle = await self._fetch(uuid)
        return Entry(bundle, self._clock() + self.ttl)

    def _store(self, uuid: str, entry: Entry) -> None:
        self._entries[uuid] = entry
        self._entries.move_to_end(uuid)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
