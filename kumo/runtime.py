"""What a process shares between requests: settings, database, token provider, wake-ups."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from kumo.config import Settings
from kumo.db import Database
from kumo.identity import revocation
from kumo.identity.tokens import TokenProvider
from kumo.image.store import file_store
from kumo.placement.fleet_index import FleetIndex
from kumo.store import choice  # noqa: F401  (registers the chooser of every Database's store)


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


@dataclass
class Runtime:
    settings: Settings
    db: Database
    tokens: TokenProvider
    waker: Waker = field(default_factory=Waker)
    agent_token: str = ""
    fleet: FleetIndex = field(default_factory=FleetIndex)  # the scheduler's prefilter (per worker)

    def __post_init__(self) -> None:
        # What a committed transaction owes waiters (kumo.db.wake_after_commit: firewall syncs,
        # DHCP generations applied) is published through this runtime's waker, whichever
        # publish it has then (the PostgreSQL notifier replaces it once started).
        self.db.publish = lambda key: self.waker.publish(key)
        # A snapshot discarded by a server's change (kumo.image.service.discard) loses its data.
        self.db.image_store = file_store(self.settings.resolved_image_dir)


def build_runtime(settings: Settings, db: Database | None = None) -> Runtime:
    database = db or Database(settings.resolved_database_url)

    def load_revoked() -> revocation.Revocations:
        with database.read() as session:
            return revocation.load(session, settings.token_ttl_seconds)

    tokens = TokenProvider(
        settings.secret("token_key", generate="fernet"), settings.token_ttl_seconds, load_revoked
    )
    return Runtime(settings=settings, db=database, tokens=tokens, agent_token=settings.secret("agent_token"))
