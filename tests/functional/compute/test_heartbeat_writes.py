"""A heartbeat rewrites its host's row in place on PostgreSQL (migration a5: compute_hosts at
fillfactor 50): no new page, no index entry, whatever the fleet size (heap-only updates)."""

from __future__ import annotations

from sqlalchemy import text

from kumo.compute import hosts
from kumo.db import Database
from kumo.db.migrate import upgrade


def test_heartbeats_are_heap_only_updates(pg_database_url: str) -> None:
    upgrade(pg_database_url)
    db = Database(pg_database_url)
    try:
        with db.transaction() as s:
            for n in range(200):
                hosts.register_host(s, f"hb-{n}", vcpus=8, memory_mb=8192, disk_gb=100)
        with db.transaction() as s:
            options = s.scalar(text("SELECT reloptions FROM pg_class WHERE relname = 'compute_hosts'"))
        assert "fillfactor=50" in (options or [])

        def updates() -> tuple[int, int]:
            with db.transaction() as s:
                s.execute(text("SELECT pg_stat_force_next_flush()"))
            with db.transaction() as s:
                s.execute(text("SELECT pg_stat_clear_snapshot()"))
                stats = "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = :table"
                row = s.execute(text(stats), {"table": "compute_hosts"}).one()
            return int(row[0]), int(row[1])

        before = updates()
        for _ in range(3):  # every host beats three times: 600 rewrites of 200 rows
            with db.transaction() as s:
                for n in range(200):
                    hosts.heartbeat(s, f"hb-{n}")
        after = updates()
        written, heap_only = after[0] - before[0], after[1] - before[1]
        assert written == 600
        # Without the fillfactor (100: the test then fails here) most of them move to new pages.
        assert heap_only >= 0.9 * written
    finally:
        db.dispose()
