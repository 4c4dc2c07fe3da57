"""Changes made from a read of the instance (delete, forceDelete, evacuate, os-resetState) lock
its row first, so on PostgreSQL they wait for a scheduler placing it (which holds that row,
FOR UPDATE SKIP LOCKED) and see the host it got, instead of overwriting the placement from a
stale read: a delete taking the no-host path left a deleted server with its allocation and a
spawn task alive. SQLite serialises writing transactions anyway (BEGIN IMMEDIATE)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from kumo.api.context import RequestContext
from kumo.compute import actions, evacuate, hosts, server_ops, servers
from kumo.compute.models import Instance
from kumo.compute.scheduling import _lock_pending, commit_plan, placement_plan
from kumo.compute.states import SCHEDULE_EVENT, TaskState, VmState
from kumo.config import Settings
from kumo.db import Database
from kumo.deploy import init_cloud
from kumo.errors import KumoError
from kumo.placement.models import Allocation, ResourceProvider
from kumo.scheduler.core import Candidate
from kumo.scheduler.request import ScheduleRequest
from kumo.work.models import Task
from tests.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.postgres

HOST = "lock-host"
PROJECT = "lock-project"
ADMIN = RequestContext(user_id="admin-user", project_id=PROJECT, roles=("admin",))


@pytest.fixture
def db(tmp_path: Path, pg_database_url: str) -> Iterator[Database]:
    """A migrated PostgreSQL database with one live host and no API (so no scheduler runs)."""
    database = init_cloud(
        Settings(state_dir=tmp_path / "state", database_url=pg_database_url), ADMIN_PASSWORD
    )
    with database.transaction() as s:
        hosts.register_host(s, HOST, vcpus=8, memory_mb=16384, disk_gb=100)
        hosts.heartbeat(s, HOST)
    yield database
    database.dispose()


def _pending_instance(db: Database) -> str:
    """A server as a create leaves it: building, scheduling, no host, its scheduling event open."""
    instance_uuid = str(uuid.uuid4())
    with db.transaction() as s:
        s.add(
            Instance(
                uuid=instance_uuid,
                project_id=PROJECT,
                user_id=ADMIN.user_id,
                name="vm",
                host=None,
                flavor={"id": "f", "name": "f", "vcpus": 1, "ram": 512, "disk": 1},
                vcpus=1,
                memory_mb=512,
                vm_state=VmState.BUILDING,
                task_state=TaskState.SCHEDULING,
            )
        )
        s.flush()
        action = actions.start_action(s, instance_uuid, "create", "req-x", ADMIN.user_id, PROJECT)
        actions.start_event(s, action.id, SCHEDULE_EVENT)
    return instance_uuid


def test_a_delete_waits_for_the_placement_it_races(db: Database) -> None:
    """The scheduler holds the pending row and places it (allocation, host, spawn task); a
    delete issued meanwhile waits, then sees the host and asks its agent to delete: the spawn
    is cancelled and the allocation goes with that delete, never left to a deleted server."""
    instance_uuid = _pending_instance(db)
    outcome: list[BaseException | None] = []

    def delete() -> None:
        try:
            with db.transaction() as s:
                servers.delete(s, ADMIN, instance_uuid)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome.append(exc)

    with db.transaction() as scheduler:
        instance = _lock_pending(scheduler, instance_uuid, skip_locked=True)
        assert instance is not None
        provider = scheduler.scalar(select(ResourceProvider).where(ResourceProvider.name == HOST))
        assert provider is not None
        deleting = threading.Thread(target=delete)
        deleting.start()
        deleting.join(0.5)
        resources = {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}
        plan = placement_plan(
            instance, _request(instance.uuid, resources), _candidate(HOST, provider), "nova"
        )
        assert commit_plan(scheduler, instance, plan) is not None
        assert deleting.is_alive(), outcome  # it waits for the placement's lock
    deleting.join(10)
    assert outcome == [None]
    with db.read() as s:
        instance = s.scalar(select(Instance).where(Instance.uuid == instance_uuid))
        assert instance is not None
        held = s.scalars(
            select(Allocation.resource_class).where(Allocation.consumer_id == instance_uuid)
        ).all()
        states = dict(
            s.execute(select(Task.kind, Task.state).where(Task.instance_uuid == instance_uuid)).all()
        )
    assert (instance.deleted, instance.host, instance.task_state) == (False, HOST, TaskState.DELETING)
    assert states == {"spawn": "cancelled", "delete": "pending"}
    assert sorted(held) == ["DISK_GB", "MEMORY_MB", "VCPU"]  # freed when the host's agent deletes


def _capture(db: Database) -> tuple[list[str], Callable[[], None]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", record)
    return seen, lambda: event.remove(db.engine, "before_cursor_execute", record)


@pytest.mark.parametrize(
    "change",
    [
        lambda s, sid: servers.delete(s, ADMIN, sid),
        lambda s, sid: servers.delete(s, ADMIN, sid, force=True),
        lambda s, sid: server_ops.reset_state(s, ADMIN, sid, "error"),
        lambda s, sid: evacuate.evacuate(s, ADMIN, sid, evacuate.EvacuateRequest()),
    ],
    ids=["delete", "forceDelete", "resetState", "evacuate"],
)
def test_changes_from_a_read_lock_the_instance_row(db: Database, change: Callable[[Any, str], Any]) -> None:
    """Structural: the first read of the instance is SELECT … FROM instances … FOR UPDATE."""
    instance_uuid = _pending_instance(db)
    seen, stop = _capture(db)
    try:
        with db.transaction() as s:
            try:
                change(s, instance_uuid)
            except KumoError:
                pass  # evacuate refuses a server with no host, after reading it
    finally:
        stop()
    first = next(sql for sql in seen if "FROM instances" in sql)
    assert first.startswith("SELECT instances.") and first.endswith("FOR UPDATE"), first


def _request(instance_uuid: str, resources: dict[str, int]) -> ScheduleRequest:
    return ScheduleRequest(instance_uuid=instance_uuid, project_id="p", resources=resources)


def _candidate(host: str, provider: ResourceProvider) -> Candidate:
    return Candidate(host=host, provider_id=provider.id, generation=provider.generation, weight=0.0)
