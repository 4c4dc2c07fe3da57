"""Nova's os-instance_usage_audit_log (admin): the state of the periodic instance-usage audit
for the last completed audit period (a month, Nova's default `instance_usage_audit_period`)
before a time. kumo runs no such audit task (Nova with `instance_usage_audit` off), so no host
has a task log: every compute host is "not run", the log is empty, nothing is counted."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute.models import ComputeHost
from kumo.db import utcnow
from kumo.errors import BadRequest

_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True)
class AuditLog:
    period_beginning: dt.datetime
    period_ending: dt.datetime
    hosts_not_run: tuple[str, ...]
    hosts_done: int = 0
    hosts_running: int = 0
    total_errors: int = 0
    total_instances: int = 0

    @property
    def num_hosts(self) -> int:
        return len(self.hosts_not_run) + self.hosts_done + self.hosts_running

    @property
    def overall_status(self) -> str:
        done = "ALL" if self.hosts_done == self.num_hosts else f"{self.hosts_done} of {self.num_hosts}"
        return f"{done} hosts done. {self.total_errors} errors."


def parse_before(text: str) -> dt.datetime:
    """Nova's `before_timestamp`: "YYYY-MM-DD hh:mm:ss[.ffffff]"; anything else is a 400."""
    for form in _FORMATS:
        try:
            return dt.datetime.strptime(text, form)
        except ValueError:
            continue
    raise BadRequest(f"Invalid timestamp for date {text}")


def audit_period(before: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The last whole month ended at or before `before`: from the first of the month before
    `before`'s to the first of `before`'s month (midnight)."""
    end = before.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if end == dt.datetime.min:  # January of year 1: no month before it
        raise BadRequest(f"Invalid timestamp for date {before}")
    begin = (end - dt.timedelta(days=1)).replace(day=1)
    return begin, end


def audit_log(session: Session, ctx: RequestContext, before: str | None) -> AuditLog:
    """The audit of the period before `before` (parse_before's text; None: now). Admin only,
    checked before the timestamp is read (a non-admin's bad timestamp is a 403, as Nova)."""
    ctx.require_admin()
    begin, end = audit_period(utcnow() if before is None else parse_before(before))
    hosts = tuple(session.scalars(select(ComputeHost.name).order_by(ComputeHost.name)))
    return AuditLog(begin, end, hosts_not_run=hosts)
