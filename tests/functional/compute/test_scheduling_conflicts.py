"""A scheduling pass that loses a claim compare-and-swap leaves that server pending for the next
pass and goes on with a fresh read of the fleet, not with its stale snapshot."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from kumo.compute import hosts, scheduling
from kumo.compute.models import Instance
from kumo.config import Settings
from kumo.db import Database
from kumo.wiring import build_runtime


def _pending(db: Database, n: int) -> list[str]:
    uuids = [str(uuid.uuid4()) for _ in range(n)]
    with db.transaction() as s:
        for i, instance_uuid in enumerate(uuids):
            s.add(
                Instance(
                    uuid=instance_uuid,
                    project_id="p",
                    user_id="u",
                    name=f"vm{i}",
                    flavor={"id": "f", "name": "f", "vcpus": 1, "ram": 256, "disk": 1},
                    vcpus=1,
                    memory_mb=256,
                    vm_state="building",
                    task_state="scheduling",
                )
            )
    return uuids


def test_a_lost_claim_leaves_the_server_pending_and_the_pass_reads_again(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    settings.state_dir.mkdir(parents=True)
    shutil.copyfile(sqlite_template, settings.state_dir / "kumo.db")
    db = Database(settings.resolved_database_url)
    rt = build_runtime(settings, db)
    with db.transaction() as s:
        for name in ("h1", "h2"):
            hosts.register_host(s, name, vcpus=8, memory_mb=8192, disk_gb=100, reserved_memory_mb=0)
            hosts.heartbeat(s, name)
    first, second = _pending(db, 2)

    reads: list[int] = []
    real_read = scheduling.pass_snapshot

    def counting_read(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return real_read(*args, **kwargs)

    real_claim = scheduling._commit_first
    calls: list[str] = []

    def lose_the_first(session: Any, instance: Any, request: Any, candidates: Any, snapshot: Any) -> Any:
        calls.append(instance.uuid)
        if len(calls) == 1:
            return None  # another worker claimed there: every candidate moved
        return real_claim(session, instance, request, candidates, snapshot)

    monkeypatch.setattr(scheduling, "pass_snapshot", counting_read)
    monkeypatch.setattr(scheduling, "_commit_first", lose_the_first)
    try:
        handled, woken = scheduling.schedule_pending(rt)
        assert handled == 2 and len(woken) == 1
        assert len(reads) == 2  # the pass's read, and a fresh one after the lost claim
        with db.read() as s:
            states = {i.uuid: (i.task_state, i.host) for i in s.query(Instance)}
        assert states[first] == ("scheduling", None)  # left for the next pass
        assert states[second][0] == "spawning" and states[second][1] in ("h1", "h2")
        monkeypatch.setattr(scheduling, "_commit_first", real_claim)
        assert scheduling.schedule_pending(rt)[0] == 1  # the next pass places it
        with db.read() as s:
            placed = {i.uuid: i.task_state for i in s.query(Instance)}
        assert placed == {first: "spawning", second: "spawning"}
    finally:
        db.dispose()
