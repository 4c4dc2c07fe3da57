"""The work hook registry: hooks run in registration order, once each, on enqueue and settle."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from kumo import wiring
from kumo.baremetal import service as baremetal
from kumo.compute import server_ops
from kumo.compute.precache import service as precache
from kumo.errors import Conflict
from kumo.network import firewall as network_firewall
from kumo.network import sync as network_sync
from kumo.work import hooks, queue
from kumo.work.kinds import EmptyPayload, PrecachePayload, SpawnPayload, TaskKind
from kumo.work.models import Task


class Recorder:
    def __init__(self, name: str, calls: list[tuple[str, str, str]]) -> None:
        self.name, self.calls = name, calls

    def on_enqueued(self, session: Session, task: Task) -> None:
        self.calls.append((self.name, "enqueued", task.kind))

    def settle(self, session: Session, task: Task, ok: bool, result: dict[str, Any]) -> None:
        self.calls.append((self.name, "settle", task.kind))
        result.setdefault("seen_by", []).append(self.name)

    def late(self, session: Session, task: Task, result: dict[str, Any]) -> None:
        self.calls.append((self.name, "late", task.kind))


class Refuser:
    def on_enqueued(self, session: Session, task: Task) -> None:
        raise Conflict("no")

    def settle(self, session: Session, task: Task, ok: bool, result: dict[str, Any]) -> None:
        pass

    def late(self, session: Session, task: Task, result: dict[str, Any]) -> None:
        pass


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    saved = hooks.registered()
    for h in saved:
        hooks.unregister(h)
    try:
        yield
    finally:
        for h in hooks.registered():
            hooks.unregister(h)
        for h in saved:
            hooks.register(h)


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Task.__table__.create(engine)  # type: ignore[attr-defined]
    with Session(engine) as s:
        yield s


def test_hooks_run_in_registration_order_once_each(fresh_registry: None, session: Session) -> None:
    calls: list[tuple[str, str, str]] = []
    first, second = Recorder("first", calls), Recorder("second", calls)
    hooks.register(first)
    hooks.register(second)
    hooks.register(first)  # again: still once
    task = queue.enqueue(session, "hv-1", TaskKind.SPAWN, None, SpawnPayload(None, {}), None)
    result: dict[str, Any] = {}
    hooks.settled(session, task, True, result)
    assert calls == [
        ("first", "enqueued", "spawn"),
        ("second", "enqueued", "spawn"),
        ("first", "settle", "spawn"),
        ("second", "settle", "spawn"),
    ]
    assert result["seen_by"] == ["first", "second"]  # a later hook sees what an earlier one wrote


def test_a_hook_refusing_the_work_raises_out_of_enqueue(fresh_registry: None, session: Session) -> None:
    hooks.register(Refuser())
    with pytest.raises(Conflict):
        queue.enqueue(session, "hv-1", TaskKind.IMAGE_CACHE, None, EmptyPayload(), None)


def test_without_hooks_enqueue_only_adds_the_row(fresh_registry: None, session: Session) -> None:
    task = queue.enqueue(session, "hv-1", TaskKind.IMAGE_CACHE, None, EmptyPayload(), "req-1")
    assert (task.kind, task.payload, task.host, task.request_id) == ("image_cache", {}, "hv-1", "req-1")


def test_a_payload_of_another_kind_is_refused(fresh_registry: None, session: Session) -> None:
    with pytest.raises(TypeError):
        queue.enqueue(session, "hv-1", TaskKind.SPAWN, None, EmptyPayload(), None)


def test_install_registers_baremetal_then_networking_once(fresh_registry: None) -> None:
    wiring.install()
    wiring.install()
    assert hooks.registered() == (
        baremetal.HOOKS,
        network_sync.HOOKS,
        network_firewall.HOOKS,
        precache.HOOKS,
    )


def test_a_result_for_a_task_failed_without_one_is_heard_late_once(
    fresh_registry: None, session: Session
) -> None:
    calls: list[tuple[str, str, str]] = []
    hooks.register(Recorder("r", calls))
    task = queue.enqueue(session, "hv-1", TaskKind.PRECACHE, None, PrecachePayload("j", "i", [], 0, 0), None)
    session.flush()
    queue.fail_pending(session, task.id, "host down")
    session.refresh(task)
    assert server_ops.settle(session, task, True, {"bytes_from_origin": 5}) is None
    assert server_ops.settle(session, task, True, {"bytes_from_origin": 5}) is None  # resent
    assert calls == [("r", "enqueued", "precache"), ("r", "late", "precache")]
    assert task.state == "failed"  # nothing settles


def test_lockers_run_once_each_on_the_batch_before_its_tasks_are_locked(fresh_registry: None) -> None:
    seen: list[tuple[str, ...]] = []

    def locker(session: Session, task_ids: Sequence[str]) -> None:
        seen.append(tuple(task_ids))

    saved = hooks.lockers()
    for other in saved:
        hooks.unregister_locker(other)
    hooks.register_locker(locker)
    hooks.register_locker(locker)  # again: still once
    try:
        hooks.lock_first(None, ["t1", "t2"])  # type: ignore[arg-type]
        assert seen == [("t1", "t2")]
    finally:
        hooks.unregister_locker(locker)
        for other in saved:
            hooks.register_locker(other)
    wiring.install()
    assert precache.lock_jobs_of in hooks.lockers()  # a precache job's row before its tasks'
