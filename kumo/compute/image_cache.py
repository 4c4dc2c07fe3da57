"""The image cache of a host, as its agent sees it now (kumo extension, admin only):
`GET /compute/v2.1/os-kumo-image-cache/{host}`. Like the console, the API asks the host's agent
with a question task (`image_cache`) and waits for the answer; nothing is stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute.models import ComputeHost
from kumo.db import Database
from kumo.errors import NotFound
from kumo.work import queue
from kumo.work.kinds import EmptyPayload, TaskKind

TASK_KIND = TaskKind.IMAGE_CACHE
WAIT_SECONDS = 15.0


def request_report(session: Session, ctx: RequestContext, host: str) -> str:
    """Enqueue the question for `host`'s agent; returns the task id (wake `host` after commit)."""
    ctx.require_admin()
    if session.scalar(select(ComputeHost.id).where(ComputeHost.name == host)) is None:
        raise NotFound(f"Compute host {host} could not be found.")
    return queue.enqueue(session, host, TASK_KIND, None, EmptyPayload(), ctx.request_id).id


def collect_report(db: Database, task_id: str, timeout: float | None = None) -> list[dict[str, Any]]:
    result = queue.await_answer(
        db,
        task_id,
        WAIT_SECONDS if timeout is None else timeout,
        "Image cache report",
        summary=lambda r: {"images": len(r.get("images") or [])},
    )
    return list(result.get("images") or [])
