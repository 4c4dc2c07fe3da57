"""Simple tenant usage (Nova's os-simple-tenant-usage): what each project's servers used over a
period, from the instance records (launched_at, terminated_at and the boot-time flavor).

Invariants, as in Nova: a server counts in a period when it was not terminated before the period
starts and not launched after it stops (deleted servers included); its hours are those of the
overlap of [launched_at, terminated_at or the period's stop] with the period, 0 for a server
never launched; a project's totals are sums over its servers of hours and of hours times the
flavor's vCPUs, RAM (MB) and disk (root + ephemeral GB). Servers are ordered by (project, uuid),
the order a 2.40 page's marker continues. Listing every project is for admins; a project's own
usage is for its members and admins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute.models import Instance
from kumo.db import utcnow
from kumo.errors import BadRequest, Forbidden

_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True)
class ServerUsage:
    instance_id: str
    name: str
    tenant_id: str
    flavor: str
    hours: float
    memory_mb: int
    local_gb: int
    vcpus: int
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    state: str
    uptime: int  # seconds


@dataclass
class TenantUsage:
    tenant_id: str
    start: dt.datetime
    stop: dt.datetime
    servers: list[ServerUsage] = field(default_factory=list)

    @property
    def total_hours(self) -> float:
        return sum(s.hours for s in self.servers)

    @property
    def total_vcpus_usage(self) -> float:
        return sum(s.vcpus * s.hours for s in self.servers)

    @property
    def total_memory_mb_usage(self) -> float:
        return sum(s.memory_mb * s.hours for s in self.servers)

    @property
    def total_local_gb_usage(self) -> float:
        return sum(s.local_gb * s.hours for s in self.servers)


@dataclass(frozen=True)
class UsageQuery:
    start: dt.datetime
    stop: dt.datetime
    detailed: bool = False
    limit: int | None = None  # 2.40: at most this many servers (over all projects)
    marker: str | None = None  # 2.40: the uuid of the last server of the previous page


@dataclass(frozen=True)
class UsageReport:
    tenants: list[TenantUsage]
    servers: list[ServerUsage]  # every server counted, in page order (the marker's order)


def parse_time(raw: str | None, now: dt.datetime) -> dt.datetime:
    """A period bound as Nova reads one (three strptime formats, naive UTC); absent: now."""
    if not raw:
        return now
    for fmt in _TIME_FORMATS:
        try:
            return dt.datetime.strptime(raw, fmt)
        except ValueError:
            continue
    raise BadRequest("Invalid input received: Datetime is in invalid format")


def parse_period(
    start: str | None, end: str | None, now: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    moment = now or utcnow()
    period_start, period_stop = parse_time(start, moment), parse_time(end, moment)
    if not period_start < period_stop:
        raise BadRequest("Invalid start time. The start time cannot occur after the end time.")
    return period_start, period_stop


def hours_for(
    launched_at: dt.datetime | None, terminated_at: dt.datetime | None, start: dt.datetime, stop: dt.datetime
) -> float:
    """The hours a server ran within [start, stop] (Nova's _hours_for)."""
    if terminated_at is not None and terminated_at < start:
        return 0.0
    if launched_at is None or launched_at > stop:
        return 0.0
    begin = max(launched_at, start)
    end = min(stop, terminated_at) if terminated_at is not None else stop
    return (end - begin).total_seconds() / 3600.0


def server_usage(instance: Instance, start: dt.datetime, stop: dt.datetime, now: dt.datetime) -> ServerUsage:
    flavor = instance.flavor or {}
    ended = instance.terminated_at
    started = instance.launched_at
    if started is None:
        uptime = 0
    else:
        uptime = int(((ended or now) - started).total_seconds())
    return ServerUsage(
        instance_id=instance.uuid,
        name=instance.name,
        tenant_id=instance.project_id,
        flavor=str(flavor.get("name", "")),
        hours=hours_for(started, ended, start, stop),
        memory_mb=int(flavor.get("ram", instance.memory_mb) or 0),
        local_gb=int(flavor.get("disk") or 0) + int(flavor.get("ephemeral") or 0),
        vcpus=int(flavor.get("vcpus", instance.vcpus) or 0),
        started_at=started,
        ended_at=ended,
        state="terminated" if ended is not None else instance.vm_state,
        uptime=uptime,
    )


def summarize(usages: Sequence[ServerUsage], start: dt.datetime, stop: dt.datetime) -> list[TenantUsage]:
    """One TenantUsage per project, in the order the projects first appear."""
    tenants: dict[str, TenantUsage] = {}
    for usage in usages:
        tenant = tenants.setdefault(usage.tenant_id, TenantUsage(usage.tenant_id, start, stop))
        tenant.servers.append(usage)
    return list(tenants.values())


def _instances(session: Session, query: UsageQuery, project_id: str | None) -> list[Instance]:
    stmt = select(Instance).where(
        or_(Instance.terminated_at.is_(None), Instance.terminated_at > query.start),
        or_(Instance.launched_at.is_(None), Instance.launched_at < query.stop),
    )
    if project_id is not None:
        stmt = stmt.where(Instance.project_id == project_id)
    if query.marker is not None:
        marker = session.scalar(select(Instance).where(Instance.uuid == query.marker))
        if marker is None or (project_id is not None and marker.project_id != project_id):
            raise BadRequest(f"marker [{query.marker}] not found")
        stmt = stmt.where(
            or_(
                Instance.project_id > marker.project_id,
                and_(Instance.project_id == marker.project_id, Instance.uuid > marker.uuid),
            )
        )
    stmt = stmt.order_by(Instance.project_id, Instance.uuid)
    if query.limit is not None:
        stmt = stmt.limit(query.limit)
    return list(session.scalars(stmt))


def _report(session: Session, query: UsageQuery, project_id: str | None) -> UsageReport:
    now = utcnow()
    usages = [server_usage(i, query.start, query.stop, now) for i in _instances(session, query, project_id)]
    return UsageReport(summarize(usages, query.start, query.stop), usages)


def list_usage(session: Session, ctx: RequestContext, query: UsageQuery) -> UsageReport:
    """Every project's usage over the period: admins only (Nova's default policy)."""
    if not ctx.is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:os-simple-tenant-usage:list to be performed.")
    return _report(session, query, None)


def show_usage(session: Session, ctx: RequestContext, project_id: str, query: UsageQuery) -> UsageReport:
    """One project's usage over the period: its members and admins."""
    if not ctx.owns(project_id):
        raise Forbidden("Policy doesn't allow os_compute_api:os-simple-tenant-usage:show to be performed.")
    return _report(session, query, project_id)
