"""Cross-worker wake-ups over PostgreSQL LISTEN/NOTIFY (no broker). On SQLite there is one
process, and the in-process Waker is all there is."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import text

from kumo.db.base import Database

log = logging.getLogger(__name__)
CHANNEL = "kumo_wake"


class Wakeable(Protocol):
    """What the notifier drives (kumo.runtime.Waker): `wake` wakes this process's waiters,
    `publish` is what the process calls to wake every worker's."""

    publish: Callable[[str], None]

    def wake(self, key: str) -> None: ...


class PgNotifier:
    """Forwards every published key to all workers: NOTIFY out, LISTEN in → Waker.wake."""

    def __init__(self, db: Database, waker: Wakeable) -> None:
        self.db = db
        self.waker = waker
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._listen, name="kumo-listen", daemon=True)

    def start(self) -> PgNotifier:
        self.waker.publish = self.publish
        self.thread.start()
        return self

    def publish(self, key: str) -> None:
        self.waker.wake(key)  # this worker at once; the others through NOTIFY
        try:
            with self.db.engine.connect() as conn:
                conn.execute(text("SELECT pg_notify(:channel, :key)"), {"channel": CHANNEL, "key": key})
                conn.commit()
        except Exception:  # a lost wake-up costs latency only: waiters re-check the database
            log.warning("NOTIFY %s failed", key, exc_info=True)

    def _listen(self) -> None:
        import psycopg

        dsn = self.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self.stop_event.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self.stop_event.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self.waker.wake(note.payload)
            except Exception:
                log.warning("LISTEN connection lost; reconnecting", exc_info=True)
                self.stop_event.wait(1.0)

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=3)
