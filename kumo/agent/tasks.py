"""Handing work to agents: a task row is written in the same transaction as the state change
that needs it, and the host's agent is woken after commit."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kumo.agent.models import Task


def enqueue(
    session: Session,
    host: str,
    kind: str,
    instance_uuid: str | None,
    payload: dict[str, Any],
    request_id: str | None,
) -> Task:
    task = Task(
        id=str(uuid.uuid4()),
        host=host,
        kind=kind,
        instance_uuid=instance_uuid,
        payload=payload,
        request_id=request_id,
    )
    session.add(task)
    # A baremetal node is a host too: its node moves with the work (deploying, deleting…) and
    # the task carries the node for its conductor.
    from kumo.baremetal.service import on_task_enqueued

    on_task_enqueued(session, task)
    return task


def pending_for_host(
    session: Session, host: str, exclude: Collection[str] = (), limit: int = 100
) -> list[Task]:
    stmt = select(Task).where(Task.host == host, Task.state == "pending")
    if exclude:
        stmt = stmt.where(Task.id.not_in(list(exclude)))
    return list(session.scalars(stmt.order_by(Task.created_at, Task.id).limit(limit)))


def cancel_for_instance(session: Session, instance_uuid: str) -> None:
    """A deleted instance's unfinished work is moot (the delete task is enqueued after this)."""
    session.execute(
        update(Task)
        .where(Task.instance_uuid == instance_uuid, Task.state == "pending")
        .values(state="cancelled")
    )


def host_key(host: str) -> str:
    return f"host:{host}"
