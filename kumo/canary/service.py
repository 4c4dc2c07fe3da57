"""The canaries' results (os-kumo-canaries): a runner reports each canary it ran; recording it
also decides, by the pure policy (kumo/canary/policy.py), the verdict on the host it ran on and
applies it in the same transaction: the host's scheduler penalty (`canary_suspect`, read by
the CanaryWeigher through the snapshot), its service disabled with reason `canary`, or enabled
again once its canary passes (only when the canaries disabled it)."""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.canary.models import CanaryRun
from kumo.canary.policy import (
    CANARY_REASON,
    SCOPES,
    CanaryPolicy,
    Verdict,
    consecutive_failures,
    host_change,
    verdict,
)
from kumo.compute import params
from kumo.compute.models import ComputeHost
from kumo.errors import BadRequest
from kumo.validation import MAX_INT

MAX_STEPS = 32
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
STEP_KEYS = {"step", "ok", "request_id", "seconds", "detail"}
REPORT_KEYS = {
    "scope",
    "target",
    "availability_zone",
    "host",
    "ok",
    "failed_step",
    "error",
    "steps",
    "server_id",
    "started_at",
    "finished_at",
}


@dataclass(frozen=True)
class Report:
    scope: str
    target: str
    availability_zone: str | None
    host: str | None
    ok: bool
    failed_step: str | None
    error: str | None
    steps: list[dict[str, Any]]
    server_id: str | None
    started_at: dt.datetime
    finished_at: dt.datetime


def _time(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value!r}. Not an ISO 8601 time")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value!r}. Not an ISO 8601 time"
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def _optional_text(value: Any, field: str, max_length: int = 255) -> str | None:
    return None if value is None else params.string_value(value, field, max_length, printable=False)


def _step(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadRequest("Invalid input for field/attribute steps. Each step must be an object")
    params.reject_unknown(raw, STEP_KEYS, "steps")
    seconds = raw.get("seconds", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_INT:
        raise BadRequest(f"Invalid input for field/attribute seconds. Value: {seconds!r}.")
    return {
        "step": params.name_value(raw.get("step"), "step", 32),
        "ok": params.strict_bool(raw.get("ok"), "ok"),
        "request_id": _optional_text(raw.get("request_id"), "request_id", 64),
        "seconds": float(seconds),
        "detail": _optional_text(raw.get("detail"), "detail", 4096),
    }


def parse_report(body: Any) -> Report:
    data = params.body_object(body, "canary")
    params.reject_unknown(data, REPORT_KEYS, "canary")
    for key in ("scope", "target", "ok", "steps", "started_at", "finished_at"):
        if key not in data:
            raise BadRequest(f"Invalid input for field/attribute canary. '{key}' is a required property")
    scope = data["scope"]
    if scope not in SCOPES:
        raise BadRequest(
            f"Invalid input for field/attribute scope. Value: {scope!r}. Must be one of {', '.join(SCOPES)}"
        )
    steps = data["steps"]
    if not isinstance(steps, list) or len(steps) > MAX_STEPS:
        raise BadRequest(f"Invalid input for field/attribute steps. A list of at most {MAX_STEPS} steps")
    server_id = data.get("server_id")
    if server_id is not None and not (isinstance(server_id, str) and params.is_uuid_like(server_id)):
        raise BadRequest(f"Invalid input for field/attribute server_id. Value: {server_id!r}.")
    return Report(
        scope=scope,
        target=params.name_value(data["target"], "target"),
        availability_zone=params.optional_name(data.get("availability_zone"), "availability_zone"),
        host=params.host_value(data.get("host")),
        ok=params.strict_bool(data["ok"], "ok"),
        failed_step=params.optional_name(data.get("failed_step"), "failed_step"),
        error=_optional_text(data.get("error"), "error", 4096),
        steps=[_step(s) for s in steps],
        server_id=server_id,
        started_at=_time(data["started_at"], "started_at"),
        finished_at=_time(data["finished_at"], "finished_at"),
    )


def _history(session: Session, host: str, length: int) -> list[bool]:
    """The host's last `length` results, oldest first."""
    rows = session.scalars(
        select(CanaryRun.ok).where(CanaryRun.host == host).order_by(CanaryRun.id.desc()).limit(length)
    ).all()
    return list(reversed(rows))


def record(session: Session, ctx: RequestContext, report: Report, policy: CanaryPolicy) -> CanaryRun:
    """Store the run; when it ran on a known host, that host's verdict (over its last results,
    this one included) applied to the host (see the module docstring)."""
    ctx.require_admin()
    run = CanaryRun(
        uuid=str(uuidlib.uuid4()),
        scope=report.scope,
        target=report.target,
        availability_zone=report.availability_zone,
        host=report.host,
        ok=report.ok,
        failed_step=None if report.ok else report.failed_step,
        error=None if report.ok else report.error,
        steps=report.steps,
        server_id=report.server_id,
        request_id=ctx.request_id,
        seconds=max(0.0, (report.finished_at - report.started_at).total_seconds()),
        started_at=report.started_at,
        finished_at=report.finished_at,
    )
    session.add(run)
    session.flush()
    host = (
        session.scalar(select(ComputeHost).where(ComputeHost.name == report.host).with_for_update())
        if report.host
        else None
    )
    if host is not None:
        found = verdict(_history(session, host.name, policy.disable_after), policy)
        change = host_change(found, host.disabled, host.disabled_reason)
        host.canary_suspect = change.suspect
        if change.disable:
            host.disabled, host.disabled_reason = True, CANARY_REASON
        elif change.enable:
            host.disabled, host.disabled_reason = False, None
        run.verdict = str(found)
        session.flush()
    return run


@dataclass(frozen=True)
class ListQuery:
    scope: str | None
    target: str | None
    host: str | None
    limit: int
    latest: bool = False  # only the newest run of each (scope, target)


def parse_list_query(
    scope: str | None, target: str | None, host: str | None, limit: str | None, latest: str | None = None
) -> ListQuery:
    if scope is not None and scope not in SCOPES:
        raise BadRequest(f"Invalid scope {scope!r}: one of {', '.join(SCOPES)}")
    if latest not in (None, "true", "false"):
        raise BadRequest(f"Invalid latest {latest!r}: true or false")
    page = params.page(limit, None, MAX_LIMIT)
    return ListQuery(scope, target, params.host_value(host), page.limit or DEFAULT_LIMIT, latest == "true")


def list_runs(session: Session, ctx: RequestContext, query: ListQuery) -> list[CanaryRun]:
    """Newest first. With `latest`: the newest run of each (scope, target) matching the other
    filters, all of them (one per zone and host at most: `limit` does not apply), in one read
    (a GROUP BY of MAX(id)), so a big fleet's daily host canaries are not lost past a limit."""
    ctx.require_admin()
    statement = select(CanaryRun).order_by(CanaryRun.id.desc())
    if query.latest:
        newest = select(func.max(CanaryRun.id)).group_by(CanaryRun.scope, CanaryRun.target)
        if query.scope is not None:
            newest = newest.where(CanaryRun.scope == query.scope)
        if query.target is not None:
            newest = newest.where(CanaryRun.target == query.target)
        statement = statement.where(CanaryRun.id.in_(newest))
    else:
        statement = statement.limit(query.limit)
    if query.scope is not None:
        statement = statement.where(CanaryRun.scope == query.scope)
    if query.target is not None:
        statement = statement.where(CanaryRun.target == query.target)
    if query.host is not None:
        statement = statement.where(CanaryRun.host == query.host)
    return list(session.scalars(statement))


@dataclass(frozen=True)
class HostHealth:
    host: str
    verdict: Verdict
    consecutive_failures: int
    suspect: bool
    disabled: bool
    disabled_reason: str | None
    last_run: CanaryRun | None


RECENT_RUNS = 5000  # the runs host_health reads, newest first: every host's last few in practice


def host_health(session: Session, ctx: RequestContext, policy: CanaryPolicy) -> list[HostHealth]:
    """Every host's canary standing, in two queries (the hosts; the most recent runs): its
    verdict over its last results, and its last run."""
    ctx.require_admin()
    recent: dict[str, list[CanaryRun]] = {}
    for run in session.scalars(
        select(CanaryRun).where(CanaryRun.host.is_not(None)).order_by(CanaryRun.id.desc()).limit(RECENT_RUNS)
    ):
        runs = recent.setdefault(str(run.host), [])
        if len(runs) < policy.disable_after:
            runs.append(run)
    found = []
    for host in session.scalars(select(ComputeHost).order_by(ComputeHost.name)):
        runs = recent.get(host.name, [])
        history = [r.ok for r in reversed(runs)]
        found.append(
            HostHealth(
                host=host.name,
                verdict=verdict(history, policy),
                consecutive_failures=consecutive_failures(history),
                suspect=host.canary_suspect,
                disabled=host.disabled,
                disabled_reason=host.disabled_reason,
                last_run=runs[0] if runs else None,
            )
        )
    return found


def overview(
    session: Session, ctx: RequestContext, query: ListQuery, policy: CanaryPolicy
) -> tuple[list[CanaryRun], list[HostHealth]]:
    """GET os-kumo-canaries: the runs asked for, and every host's standing."""
    return list_runs(session, ctx, query), host_health(session, ctx, policy)
