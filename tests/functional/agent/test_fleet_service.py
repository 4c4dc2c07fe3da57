"""The fleet side of the agent protocol (kumo.agent.service): heartbeats of many hosts at once and
the fleet task poll, on SQLite and on PostgreSQL, whose statements are built once with the names
as one array parameter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from kumo.agent import service
from kumo.compute import hosts
from kumo.compute.models import ComputeHost
from kumo.db import Database
from kumo.db.migrate import upgrade
from kumo.work import queue
from kumo.work.kinds import RebootPayload, SpawnPayload, TaskKind


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'kumo.db'}"
    else:
        url = request.getfixturevalue("pg_database_url")
    upgrade(url)
    database = Database(url)
    try:
        yield database
    finally:
        database.dispose()


def _register(db: Database, names: list[str]) -> None:
    with db.transaction() as s:
        for name in names:
            hosts.register_host(s, name, vcpus=8, memory_mb=16384, disk_gb=100)
        s.execute(update(ComputeHost).values(last_heartbeat=None))


def test_heartbeats_of_many_hosts_in_chunks_name_the_unknown(db: Database) -> None:
    names = [f"hv-{i:03d}" for i in range(7)]
    _register(db, names)
    with db.transaction() as s:
        # chunks of three: full ones, a short last one, and unknown names in two of them
        unknown = service.heartbeat_many(s, [*names, "gone-1", names[0], "gone-2"], chunk=3)
    assert unknown == ["gone-1", "gone-2"]
    with db.read() as s:
        beats = dict(s.execute(select(ComputeHost.name, ComputeHost.last_heartbeat)).all())
    assert sorted(beats) == names and all(beat is not None for beat in beats.values())
    with db.transaction() as s:
        assert service.heartbeat_many(s, ["hv-001"]) == []
        assert service.heartbeat_many(s, []) == []


def test_the_fleet_poll_hands_out_the_listed_hosts_work_oldest_first_except_the_busy(db: Database) -> None:
    with db.transaction() as s:
        first = queue.enqueue(s, "hv-2", TaskKind.SPAWN, None, SpawnPayload(None, {"n": 1}), "req-1")
    with db.transaction() as s:
        second = queue.enqueue(s, "hv-1", TaskKind.SPAWN, None, SpawnPayload(None, {"n": 2}), "req-2")
    with db.transaction() as s:
        busy = queue.enqueue(s, "hv-1", TaskKind.REBOOT, None, RebootPayload(None, None, {}, False), "req-3")
    with db.transaction() as s:
        elsewhere = queue.enqueue(s, "hv-9", TaskKind.SPAWN, None, SpawnPayload(None, {}), "req-4")
    fleet = {f"hv-{i}" for i in range(1, 1200)}
    with db.read() as s:
        handed = service.pending_fleet_work(s, fleet - {"hv-9"}, busy=[busy.id])
    assert [(t.id, t.host, t.payload) for t in handed] == [
        (first.id, "hv-2", SpawnPayload(None, {"n": 1}).to_json()),
        (second.id, "hv-1", SpawnPayload(None, {"n": 2}).to_json()),
    ]
    # More hosts with work than one statement is given (500), and more tasks than one answer holds.
    with db.transaction() as s:
        many = {
            queue.enqueue(s, f"hv-{i}", TaskKind.SPAWN, None, SpawnPayload(None, {}), f"req-{i}").id
            for i in range(100, 1100)
        }
    with db.read() as s:
        handed = service.pending_fleet_work(s, fleet, busy=[busy.id])
        fewer = service.pending_fleet_work(s, fleet, busy=[busy.id], limit=10)
    assert [t.id for t in handed[:3]] == [first.id, second.id, elsewhere.id]
    assert len(handed) == 1000 and {t.id for t in handed[3:]} <= many
    assert [t.id for t in fewer] == [t.id for t in handed[:10]]
