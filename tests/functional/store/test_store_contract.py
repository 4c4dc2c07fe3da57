"""The store contract (kumo.store): every Store method has the same observable result on every
database. Each test runs against both stores, on a SQLite file and on a fresh PostgreSQL
database.

Placements: a plan the store commits (Store.commit_placement, one statement on PostgreSQL)
writes the same rows as the ORM path of scheduling._place (baremetal nodes, soft groups);
these tests place one server each way on the same database and compare every row written,
and check that a lost compare-and-swap writes nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kumo.baremetal.models import Conductor
from kumo.compute import actions, hosts, scheduling
from kumo.compute.models import ComputeHost, Instance, InstanceAction, InstanceActionEvent
from kumo.config import Settings
from kumo.db import Database, utcnow
from kumo.db.migrate import upgrade
from kumo.errors import BadRequest, Conflict
from kumo.placement.allocation_write import AllocationWrite
from kumo.placement.api.exceptions import ConcurrentUpdate
from kumo.placement.api_models import Consumer, CustomResourceClass
from kumo.placement.models import Allocation, ResourceProvider
from kumo.runtime import Runtime
from kumo.scheduler.core import Candidate
from kumo.scheduler.request import ScheduleRequest
from kumo.store.protocol import database_store, store_of
from kumo.wiring import build_runtime
from kumo.work.models import Task
from tests.conftest import fresh_pg_database

FLAVOR = {"id": "f1", "name": "m1.small", "vcpus": 2, "ram": 2048, "disk": 10}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLite file, or a fresh PostgreSQL database (skipped when PostgreSQL is absent)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/kumo.db"
        return
    yield from fresh_pg_database()


@pytest.fixture
def rt(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    upgrade(database_url)
    settings = Settings(database_url=database_url, state_dir=tmp_path / "state")
    settings.state_dir.mkdir(parents=True)
    db = Database(database_url)
    runtime = build_runtime(settings, db)
    with db.transaction() as s:
        hosts.register_host(s, "hv1", vcpus=16, memory_mb=32768, disk_gb=500, reserved_memory_mb=0)
        hosts.heartbeat(s, "hv1")
    yield runtime
    db.dispose()


def _pending(db: Database, name: str) -> str:
    instance_uuid = str(uuid.uuid4())
    with db.transaction() as s:
        s.add(
            Instance(
                uuid=instance_uuid,
                project_id="p1",
                user_id="u1",
                name=name,
                flavor=FLAVOR,
                vcpus=2,
                memory_mb=2048,
                image_ref="img-1",
                metadata_={"role": "web"},
                vm_state="building",
                task_state="scheduling",
            )
        )
        action = actions.start_action(s, instance_uuid, "create", f"req-{name}", "u1", "p1")
        actions.start_event(s, action.id, scheduling.SCHEDULE_EVENT)
    return instance_uuid


def _written(db: Database, instance_uuid: str) -> dict[str, Any]:
    """Every row the placement of `instance_uuid` wrote or changed, ids and clocks replaced by
    what they must be."""
    with db.read() as s:
        instance = s.scalar(select(Instance).where(Instance.uuid == instance_uuid))
        assert instance is not None
        action = s.scalar(select(InstanceAction).where(InstanceAction.instance_uuid == instance_uuid))
        assert action is not None
        events = list(
            s.scalars(
                select(InstanceActionEvent)
                .where(InstanceActionEvent.action_id == action.id)
                .order_by(InstanceActionEvent.id)
            )
        )
        (task,) = s.scalars(select(Task).where(Task.instance_uuid == instance_uuid))
        allocations = s.execute(
            select(Allocation.provider_id, Allocation.resource_class, Allocation.used)
            .where(Allocation.consumer_id == instance_uuid)
            .order_by(Allocation.resource_class)
        ).all()
        spawn = events[-1]
        payload = dict(task.payload)
        assert payload.pop("event_id") == spawn.id  # the task settles the spawn event
        return {
            "instance": (instance.host, instance.availability_zone, instance.vm_state, instance.task_state),
            "instance_touched": instance.updated_at > instance.created_at,
            "action_touched": action.updated_at >= events[0].finish_time,  # type: ignore[operator]
            "action_message": action.message,
            "events": [
                (e.event, e.host, e.result, e.details, e.traceback, e.finish_time is not None) for e in events
            ],
            "task": (task.host, task.kind, task.state, task.request_id, task.attempts),
            "payload": payload,
            "allocations": [tuple(a) for a in allocations],
        }


def test_a_committed_plan_writes_what_the_orm_path_writes(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    with rt.db.read() as s:
        generation = s.scalar(select(ResourceProvider.generation).where(ResourceProvider.name == "hv1"))
    assert generation is not None

    by_orm = _pending(rt.db, "same")
    with monkeypatch.context() as m:
        m.setattr(scheduling, "_plannable", lambda *args: False)
        assert scheduling.schedule_pending(rt) == (1, {"hv1"})
    by_statement = _pending(rt.db, "same")
    calls: list[str] = []
    real_write = scheduling.commit_plan
    monkeypatch.setattr(
        scheduling, "commit_plan", lambda s, i, *a: calls.append(i.uuid) or real_write(s, i, *a)
    )
    assert scheduling.schedule_pending(rt) == (1, {"hv1"})
    assert calls == [by_statement]  # the store committed the second server's plan

    orm_rows, statement_rows = _written(rt.db, by_orm), _written(rt.db, by_statement)
    assert statement_rows["payload"]["instance"]["uuid"] == by_statement
    statement_rows["payload"]["instance"]["uuid"] = by_orm
    assert orm_rows["task"][3] == "req-same" and statement_rows["task"][3] == "req-same"
    assert statement_rows == orm_rows
    assert orm_rows["instance"] == ("hv1", "nova", "building", "spawning")
    assert orm_rows["events"] == [
        (scheduling.SCHEDULE_EVENT, None, "Success", None, None, True),
        (scheduling.SPAWN_EVENT, "hv1", None, None, None, False),
    ]
    with rt.db.read() as s:
        after = s.scalar(select(ResourceProvider.generation).where(ResourceProvider.name == "hv1"))
    assert after == generation + 2  # one compare-and-swap each


def test_a_lost_compare_and_swap_writes_nothing(rt: Runtime) -> None:
    instance_uuid = _pending(rt.db, "late")
    with rt.db.read() as s:
        provider = s.scalar(select(ResourceProvider).where(ResourceProvider.name == "hv1"))
        assert provider is not None
        provider_id, generation = provider.id, provider.generation
    with rt.db.transaction() as s:
        instance = s.scalar(select(Instance).where(Instance.uuid == instance_uuid))
        assert instance is not None
        request = ScheduleRequest(
            instance_uuid=instance_uuid,
            project_id="p1",
            resources={"VCPU": 2, "MEMORY_MB": 2048, "DISK_GB": 10},
        )
        # What a scheduler saw before another claim there:
        candidate = Candidate(host="hv1", provider_id=provider_id, generation=generation - 1, weight=0.0)
        plan = scheduling.placement_plan(instance, request, candidate, "nova")
        assert store_of(s).commit_placement(s, plan) is None
    with rt.db.read() as s:
        instance = s.scalar(select(Instance).where(Instance.uuid == instance_uuid))
        assert instance is not None and (instance.host, instance.task_state) == (None, "scheduling")
        assert s.scalars(select(Allocation)).all() == []
        assert s.scalars(select(Task)).all() == []
        assert [(e.event, e.finish_time) for e in s.scalars(select(InstanceActionEvent))] == [
            (scheduling.SCHEDULE_EVENT, None)
        ]
        assert (
            s.scalar(select(ResourceProvider.generation).where(ResourceProvider.id == provider_id))
            == generation
        )


def test_without_an_open_scheduling_event_both_paths_write_the_same(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An instance whose scheduling event is already closed (or that has none): no event is
    finished or started, and the spawn task carries no event and no request id, either way."""

    def pending_without_event(name: str) -> str:
        instance_uuid = _pending(rt.db, name)
        with rt.db.transaction() as s:
            for event in s.scalars(
                select(InstanceActionEvent).where(InstanceActionEvent.finish_time.is_(None))
            ):
                event.finish_time = event.start_time
                event.result = "Error"
        return instance_uuid

    def written(instance_uuid: str) -> tuple[Any, ...]:
        with rt.db.read() as s:
            (task,) = s.scalars(select(Task).where(Task.instance_uuid == instance_uuid))
            action_id = s.scalar(
                select(InstanceAction.id).where(InstanceAction.instance_uuid == instance_uuid)
            )
            events = s.execute(
                select(InstanceActionEvent.event, InstanceActionEvent.result)
                .where(InstanceActionEvent.action_id == action_id)
                .order_by(InstanceActionEvent.id)
            ).all()
            instance = s.scalar(select(Instance).where(Instance.uuid == instance_uuid))
            assert instance is not None
            return (
                (instance.host, instance.task_state),
                task.request_id,
                task.payload["event_id"],
                [tuple(e) for e in events],
            )

    by_orm = pending_without_event("orm")
    with monkeypatch.context() as m:
        m.setattr(scheduling, "_plannable", lambda *args: False)
        assert scheduling.schedule_pending(rt) == (1, {"hv1"})
    by_statement = pending_without_event("statement")
    assert scheduling.schedule_pending(rt) == (1, {"hv1"})
    expected = (("hv1", "spawning"), "-", None, [(scheduling.SCHEDULE_EVENT, "Error")])
    assert written(by_orm) == expected
    assert written(by_statement) == expected


def test_a_pass_commits_asynchronously_and_its_spawn_leaves_durable(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a scheduling pass needs no WAL flush to commit (lost in a database crash, its server is
    simply pending again); the spawn task it wrote reaches the agent through a poll that makes
    it durable first (tests/functional/db/test_asynchronous_commit.py)."""
    from contextlib import contextmanager

    from sqlalchemy import text

    from kumo.agent import service

    if database_store(rt.db).name != "postgresql":
        pytest.skip("asynchronous commit is PostgreSQL's")
    settings_seen: list[str] = []
    real_transaction = rt.db.transaction

    @contextmanager
    def watched(durable: bool = True) -> Iterator[Any]:
        with real_transaction(durable) as s:
            settings_seen.append(str(s.execute(text("SHOW synchronous_commit")).scalar_one()))
            yield s

    for name in ("one", "two"):
        _pending(rt.db, name)
    with monkeypatch.context() as m:
        m.setattr(rt.db, "transaction", watched)
        assert scheduling.schedule_pending(rt) == (2, {"hv1"})
    assert settings_seen == ["off", "off"]  # the pass's read and first placement, the second
    rt.settings.scheduler_asynchronous_commit = False
    _pending(rt.db, "three")
    with monkeypatch.context() as m:
        m.setattr(rt.db, "transaction", watched)
        assert scheduling.schedule_pending(rt) == (1, {"hv1"})
    assert settings_seen[2:] == ["on"]
    with rt.db.read() as s:
        handed = service.pending_work(s, "hv1", busy=[])
        assert sorted(t.kind for t in handed) == ["spawn", "spawn", "spawn"]
        assert s.execute(text("SELECT pg_current_xact_id_if_assigned()")).scalar_one() is not None


# ---------------------------------------------------------------------------- primitives


def test_one_of_and_one_of_param_select_the_same_rows(rt: Runtime) -> None:
    with rt.db.transaction() as s:
        hosts.register_host(s, "hv2", vcpus=4, memory_mb=4096, disk_gb=50, reserved_memory_mb=0)
    store = database_store(rt.db)
    with rt.db.read() as s:
        assert s.scalars(
            select(ComputeHost.name).where(store.one_of(ComputeHost.name, ["hv2", "nope"]))
        ).all() == ["hv2"]
        assert s.scalars(select(ComputeHost.name).where(store.one_of(ComputeHost.name, []))).all() == []
        by_param = select(ComputeHost.name).where(store.one_of_param(ComputeHost.name, "names"))
        for names, expected in ((["hv1", "hv2"], ["hv1", "hv2"]), (["hv1"], ["hv1"]), ([], [])):
            assert sorted(s.scalars(by_param, {"names": names})) == expected


def test_insert_if_absent_and_upsert(rt: Runtime) -> None:
    store = database_store(rt.db)
    for _ in range(2):  # the second finds the row and does nothing
        with rt.db.transaction() as s:
            store.insert_if_absent(s, CustomResourceClass, {"name": "CUSTOM_X"}, ["name"])
    now = utcnow()
    for seconds in (0, 5):
        with rt.db.transaction() as s:
            beat = now.replace(microsecond=0) + dt.timedelta(seconds=seconds)
            statement: Any = store.insert(Conductor).values(name="c1", last_heartbeat=beat, created_at=now)
            s.execute(statement.on_conflict_do_update(index_elements=["name"], set_={"last_heartbeat": beat}))
    with rt.db.read() as s:
        assert s.scalars(select(CustomResourceClass.name)).all() == ["CUSTOM_X"]
        (row,) = s.scalars(select(Conductor)).all()
        assert row.last_heartbeat == now.replace(microsecond=0) + dt.timedelta(seconds=5)


def test_transaction_locks_and_jit_are_harmless_everywhere(rt: Runtime) -> None:
    store = database_store(rt.db)
    with rt.db.transaction() as s:
        store.lock_for_transaction(s, 1, 2)
        store.lock_for_transaction(s, 1, 2)  # taken twice by one transaction: no wait
        store.without_jit(s)
    assert store.skip_locked == store.shared_by_processes == store.candidates_in_sql
    assert store.name in ("sqlite", "postgresql")


def test_replace_allocations_writes_checks_and_bumps(rt: Runtime) -> None:
    with rt.db.read() as s:
        provider = s.scalar(select(ResourceProvider).where(ResourceProvider.name == "hv1"))
        assert provider is not None
        rp, generation = provider.uuid, provider.generation
    consumer = str(uuid.uuid4())
    with rt.db.transaction() as s:
        store_of(s).replace_allocations(
            s, [AllocationWrite(consumer, {rp: {"VCPU": 3}}, "p", "u", None, True)]
        )
    with rt.db.read() as s:
        assert s.execute(select(Allocation.resource_class, Allocation.used)).all() == [("VCPU", 3)]
        assert s.scalar(select(Consumer.generation).where(Consumer.uuid == consumer)) == 1
        assert (
            s.scalar(select(ResourceProvider.generation).where(ResourceProvider.uuid == rp)) == generation + 1
        )
    with pytest.raises(Conflict, match="would exceed the capacity"), rt.db.transaction() as s:
        # 3 + 16 x 16 is over any VCPU capacity of 16 cores (allocation ratio up to 16).
        others = [AllocationWrite(str(uuid.uuid4()), {rp: {"VCPU": 16}}, "p", "u") for _ in range(16)]
        store_of(s).replace_allocations(s, others)
    with pytest.raises(BadRequest, match="does not exist"), rt.db.transaction() as s:
        store_of(s).replace_allocations(s, [AllocationWrite(consumer, {str(uuid.uuid4()): {"VCPU": 1}})])
    with pytest.raises(ConcurrentUpdate, match="expected 1 but got None"), rt.db.transaction() as s:
        store_of(s).replace_allocations(
            s, [AllocationWrite(consumer, {rp: {"VCPU": 1}}, "p", "u", None, True)]
        )
    with rt.db.transaction() as s:  # removal: rows and consumer row gone, provider bumped
        store_of(s).replace_allocations(s, [AllocationWrite(consumer, {}, "p", "u", 1, True)])
    with rt.db.read() as s:
        assert s.scalars(select(Allocation)).all() == []
        assert s.scalar(select(Consumer).where(Consumer.uuid == consumer)) is None
        assert (
            s.scalar(select(ResourceProvider.generation).where(ResourceProvider.uuid == rp)) == generation + 2
        )
