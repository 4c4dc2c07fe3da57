"""Handing work to agents: a task row is written in the same transaction as the state change
that needs it, and the host's agent is woken after commit (the caller wakes `host_key(host)`).

Invariants: a task is `pending` until its result is committed (done | failed) or it is
cancelled; every task enqueued here has passed the registered on-enqueued hooks
(kumo.work.hooks) in the enqueuer's transaction; its kind is a TaskKind and its payload that
kind's payload's JSON (kumo.work.kinds). One writer of task rows bypasses this module: a
hypervisor's spawn task committed with its placement plan (Store.commit_placement); the
scheduler sends every placement a hook cares about (a baremetal node's) through `enqueue`
instead (kumo.compute.scheduling._plannable), and a new hook must be added to that rule."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kumo.db import Database
from kumo.errors import Conflict, NotFound
from kumo.work import hooks
from kumo.work.kinds import PAYLOADS, AnyPayload, TaskKind
from kumo.work.models import Task


def enqueue(
    session: Session,
    host: str,
    kind: TaskKind,
    instance_uuid: str | None,
    payload: AnyPayload,
    request_id: str | None,
) -> Task:
    """Add a task for `host` to the session and run the on-enqueued hooks on it."""
    if not isinstance(payload, PAYLOADS[kind]):
        raise TypeError(f"a {kind} task takes a {PAYLOADS[kind].__name__}, not {type(payload).__name__}")
    task = Task(
        id=str(uuid.uuid4()),
        host=host,
        kind=str(kind),
        instance_uuid=instance_uuid,
        payload=payload.to_json(),
        request_id=request_id,
    )
    session.add(task)
    hooks.enqueued(session, task)
    return task


def pending_for_host(
    session: Session, host: str, exclude: Collection[str] = (), limit: int = 100
) -> list[Task]:
    stmt = select(Task).where(Task.host == host, Task.state == "pending")
    if exclude:
        stmt = stmt.where(Task.id.not_in(list(exclude)))
    return list(session.scalars(stmt.order_by(Task.created_at, Task.id).limit(limit)))


def cancel_for_instance(session: Session, instance_uuid: str) -> list[tuple[str, dict[str, Any]]]:
    """A deleted instance's unfinished work is moot (the delete task is enqueued after this).
    Not a `cleanup` left on a dead host: whatever becomes of the instance, that host must still
    destroy its old guest when it returns. Returns the cancelled tasks' kinds and payloads
    (what they were making, a snapshot's image, may need undoing)."""
    unfinished = (
        Task.instance_uuid == instance_uuid,
        Task.state == "pending",
        Task.kind != str(TaskKind.CLEANUP),
    )
    cancelled = session.execute(select(Task.id, Task.kind, Task.payload).where(*unfinished)).all()
    if not cancelled:
        return []
    session.execute(
        update(Task)
        .where(Task.id.in_([row.id for row in cancelled]), *unfinished)
        .values(state="cancelled")
        .execution_options(synchronize_session=False)
    )
    return [(str(row.kind), dict(row.payload or {})) for row in cancelled]


def fail_pending(session: Session, task_id: str, error: str) -> None:
    """The task failed with `error`, if it is still pending; nothing else changes."""
    session.execute(
        update(Task)
        .where(Task.id == task_id, Task.state == "pending")
        .values(state="failed", error=error)
        .execution_options(synchronize_session=False)
    )


def host_key(host: str) -> str:
    return f"host:{host}"


def await_answer(
    db: Database,
    task_id: str,
    timeout: float,
    what: str,
    summary: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Wait for an agent's answer to a question task (console tail, image cache report…): tasks
    not tied to an instance, whose settling changes no state. Returns the result; raises
    NotFound when the agent could not answer and Conflict when it did not answer in time (the
    task is then cancelled, a late answer ignored). `summary` replaces the stored result once
    read, so rows need not keep large answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.read() as session:
            task = session.get(Task, task_id)
            if task is None or task.state != "pending":
                break
        time.sleep(0.05)
    with db.transaction() as session:
        task = session.get(Task, task_id, with_for_update=True)
        if task is None:
            raise NotFound(f"{what} is not available.")
        if task.state == "pending":
            task.state = "cancelled"
            raise_after: Exception = Conflict(
                f"{what} is not available: host {task.host} did not answer within {timeout:.0f} s."
            )
        elif task.state == "done":
            result = dict(task.result or {})
            if summary is not None:
                task.result = summary(result)
            return result
        else:
            raise_after = NotFound(f"{what} is not available: {task.error}")
    raise raise_after
