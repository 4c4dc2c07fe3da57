"""Instance actions and their events: every change to an instance is recorded here."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kumo.compute.models import InstanceAction, InstanceActionEvent
from kumo.db import utcnow
from kumo.errors import NotFound


def start_action(
    session: Session,
    instance_uuid: str,
    action: str,
    request_id: str,
    user_id: str | None,
    project_id: str | None,
    message: str | None = None,
) -> InstanceAction:
    row = InstanceAction(
        instance_uuid=instance_uuid,
        action=action,
        request_id=request_id,
        user_id=user_id,
        project_id=project_id,
        message=message,
    )
    session.add(row)
    session.flush()
    return row


def start_event(session: Session, action_id: int, event: str, host: str | None = None) -> InstanceActionEvent:
    row = InstanceActionEvent(action_id=action_id, event=event, host=host)
    session.add(row)
    session.flush()
    return row


def finish_event(
    session: Session, event_id: int, ok: bool, details: str | None = None, traceback: str | None = None
) -> None:
    """Settle an event once (agents may report twice: the second is a no-op) and touch its
    action's updated_at; an error's details become the action's message. Two UPDATEs."""
    now = utcnow()
    action_id = session.scalar(
        update(InstanceActionEvent)
        .where(InstanceActionEvent.id == event_id, InstanceActionEvent.finish_time.is_(None))
        .values(finish_time=now, result="Success" if ok else "Error", details=details, traceback=traceback)
        .returning(InstanceActionEvent.action_id)
        .execution_options(synchronize_session=False)
    )
    if action_id is None:
        return
    values: dict[str, object] = {"updated_at": now}
    if not ok and details:
        values["message"] = details
    session.execute(
        update(InstanceAction)
        .where(InstanceAction.id == action_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def record(
    session: Session,
    instance_uuid: str,
    action: str,
    event: str,
    request_id: str,
    user_id: str | None,
    project_id: str | None,
    ok: bool = True,
    details: str | None = None,
    host: str | None = None,
) -> None:
    """An action whose only event happened at once (API-side actions such as confirmResize)."""
    row = start_action(session, instance_uuid, action, request_id, user_id, project_id)
    ev = start_event(session, row.id, event, host)
    finish_event(session, ev.id, ok, details)


def list_actions(
    session: Session,
    instance_uuid: str,
    since: dt.datetime | None = None,
    before: dt.datetime | None = None,
) -> list[InstanceAction]:
    """The server's actions, newest first; `since`/`before` bound their updated_at (2.58's
    changes-since, 2.66's changes-before; both inclusive)."""
    stmt = select(InstanceAction).where(InstanceAction.instance_uuid == instance_uuid)
    if since is not None:
        stmt = stmt.where(InstanceAction.updated_at >= since)
    if before is not None:
        stmt = stmt.where(InstanceAction.updated_at <= before)
    return list(session.scalars(stmt.order_by(InstanceAction.start_time.desc(), InstanceAction.id.desc())))


def get_action(
    session: Session, instance_uuid: str, request_id: str
) -> tuple[InstanceAction, list[InstanceActionEvent]]:
    action = session.scalar(
        select(InstanceAction)
        .where(InstanceAction.instance_uuid == instance_uuid, InstanceAction.request_id == request_id)
        .order_by(InstanceAction.id.desc())
        .limit(1)
    )
    if action is None:
        raise NotFound(f"Action for request_id {request_id} on instance {instance_uuid} not found")
    events = list(
        session.scalars(
            select(InstanceActionEvent)
            .where(InstanceActionEvent.action_id == action.id)
            .order_by(InstanceActionEvent.id)
        )
    )
    return action, events
