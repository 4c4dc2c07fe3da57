"""What a process shares between requests: settings, database, token provider, wake-ups.

Every service's routes take the runtime (kumo.api.deps), so this module sits below them: what
it holds of a layer above is declared here (`FleetPrefilter`) and built by the process start-up
(kumo.wiring.build_runtime), which also registers the chooser of every Database's store."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from kumo.config import Settings
from kumo.db import Database
from kumo.scheduler.snapshot import Snapshot
from kumo.tokens import TokenProvider


class Waker:
    """Wakes threads waiting for new work for a key (a host name, "scheduler").

    Inside one process this is a condition variable. Across API workers on PostgreSQL the
    notifier (kumo/db/notify.py) forwards LISTEN/NOTIFY into `wake`; waiters also re-check the
    database on a short timeout, so a lost wake-up costs latency, never work.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq: dict[str, int] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._stop_listeners: list[Callable[[], None]] = []
        # Set once the process is stopping: long waits (agents' polls) end and answer at once.
        self.stopping = threading.Event()
        self.publish: Callable[[str], None] = self.wake  # replaced by the PostgreSQL notifier when enabled

    def listen(self, callback: Callable[[str], None]) -> None:
        """Also call `callback(key)` on every wake (from the waking thread): how async
        waiters (kumo.agent.routes) hear of work without holding a thread each."""
        self._listeners.append(callback)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Also call `callback()` once stop() is called: how async waiters of any key hear of it."""
        self._stop_listeners.append(callback)

    def stop(self) -> None:
        """The process is stopping (SIGTERM, Ctrl-C): every long wait for work ends now, and the
        ones that start from now on do not wait. Work is never lost by it: tasks stay pending in
        the database until their results are reported."""
        self.stopping.set()
        for callback in list(self._stop_listeners):
            callback()

    def seq(self, key: str) -> int:
        with self._cond:
            return self._seq.get(key, 0)

    def wake(self, key: str) -> None:
        with self._cond:
            self._seq[key] = self._seq.get(key, 0) + 1
            self._cond.notify_all()
        for callback in self._listeners:
            callback(key)

    def wait(self, key: str, seen: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._seq.get(key, 0) != seen, timeout=timeout)


class FleetPrefilter(Protocol):
    """The scheduler's in-memory index of the fleet, one per worker (kumo.compute.fleet_index.
    FleetIndex): which hosts may hold a request, before the exact read of the database."""

    def sync(self, session: Session, max_age: float = 0.0) -> None:
        """Bring the index up to date (a full load the first time); nothing when the last sync
        started less than `max_age` seconds ago."""
        ...

    def observe(self, snapshot: Snapshot, provider_ids: Iterable[int] | None = None) -> None:
        """Write back an exact read of the database (of `provider_ids`, or of the whole fleet)."""
        ...

    def sample(
        self, resources: Mapping[str, int], limit: int, rng: random.Random | Any = random
    ) -> list[int]:
        """Up to `limit` providers with room for `resources`, walked from a random start."""
        ...


@dataclass
class Runtime:
    settings: Settings
    db: Database
    tokens: TokenProvider
    fleet: FleetPrefilter  # the scheduler's prefilter (per worker)
    waker: Waker = field(default_factory=Waker)
    agent_token: str = ""

    def __post_init__(self) -> None:
        # What a committed transaction owes waiters (kumo.db.wake_after_commit: firewall syncs,
        # DHCP generations applied) is published through this runtime's waker, whichever
        # publish it has then (the PostgreSQL notifier replaces it once started).
        self.db.publish = lambda key: self.waker.publish(key)
