"""os-getConsoleOutput. The serial console log lives on the instance's host, so the API asks that
host's agent for its tail with a `console` task and waits for the answer (Nova does the same
with a synchronous RPC to the compute service). Nothing is stored: every call reads the log
as it is now.

The task is not tied to the instance (instance_uuid is None): it must not queue behind the
instance's own work, and settling it changes no state. Once read, its row keeps only the size
of the answer; unanswered in time, it is cancelled (a late answer is then ignored).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import servers
from kumo.compute.lifecycle_apply import spec
from kumo.compute.states import TaskState
from kumo.db import Database
from kumo.errors import BadRequest, Conflict
from kumo.validation import MAX_INT, int_text
from kumo.work import queue
from kumo.work.kinds import ConsolePayload, TaskKind

TASK_KIND = TaskKind.CONSOLE
WAIT_SECONDS = 15.0
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")


def parse_length(args: Any) -> int | None:
    """`{"length": N}`: lines from the end; N may be an integer or a string of digits, -1 or
    null (or absent) mean the whole log."""
    if args is None:
        return None
    if not isinstance(args, dict) or set(args) - {"length"}:
        raise BadRequest("Invalid input for field/attribute os-getConsoleOutput.")
    length = args.get("length")
    if length is None:
        return None
    value = length if isinstance(length, int) and not isinstance(length, bool) else int_text(length)
    if value is None:
        raise BadRequest("Invalid input for field/attribute length. Value must be an integer.")
    if value < -1:
        raise BadRequest("Invalid input for field/attribute length. Value must be -1 or more.")
    if value > MAX_INT:
        raise BadRequest(f"Invalid input for field/attribute length. Value must be at most {MAX_INT}.")
    return None if value == -1 else value


def request_output(
    session: Session, ctx: RequestContext, server_id: str, length: int | None
) -> tuple[str, str]:
    """Enqueue the request for the instance's host; returns (task id, host to wake)."""
    instance = servers.get(session, ctx, server_id)
    if instance.host is None or instance.task_state == TaskState.DELETING:
        raise Conflict(f"Instance {instance.uuid} has no console yet or is being deleted.")
    task = queue.enqueue(
        session,
        instance.host,
        TASK_KIND,
        None,
        ConsolePayload(spec(instance), length),
        ctx.request_id,
    )
    return task.id, instance.host


def collect_output(db: Database, task_id: str, timeout: float | None = None) -> str:
    """Wait for the agent's answer; NotFound when it has no console for the instance, Conflict
    when the host does not answer within `timeout` (default WAIT_SECONDS)."""
    result = queue.await_answer(
        db,
        task_id,
        WAIT_SECONDS if timeout is None else timeout,
        "Console log",
        summary=lambda r: {"output_chars": len(str(r.get("output") or ""))},  # the row need not keep the log
    )
    return _CONTROL.sub("", str(result.get("output") or ""))
