"""The fleet's gauges, read from the database at scrape time (GET /metrics): hosts by type and
liveness, the oldest live heartbeat, the down hosts, the pending tasks."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from kumo.compute.models import ComputeHost
from kumo.db import utcnow
from kumo.metrics import DOWN_HOST_AGE, DOWN_HOST_SERIES, HEARTBEAT_AGE_MAX, HOSTS, TASKS_PENDING
from kumo.work.models import Task


def fleet_gauges(session: Session, heartbeat_timeout: float) -> None:
    """Refresh the gauges read from the database, at scrape time: hosts counted by type and
    liveness in SQL (one row per type and state, whatever the fleet's size), the oldest live
    heartbeat, and a series per down host, at most DOWN_HOST_SERIES of them."""
    now = utcnow()
    horizon = now - dt.timedelta(seconds=heartbeat_timeout)
    down = or_(
        ComputeHost.forced_down.is_(True),
        ComputeHost.last_heartbeat.is_(None),
        ComputeHost.last_heartbeat < horizon,
    )
    state = case((down, "down"), else_="up")
    HOSTS.clear()
    for hypervisor_type, host_state, count in session.execute(
        select(ComputeHost.hypervisor_type, state, func.count()).group_by(ComputeHost.hypervisor_type, state)
    ):
        HOSTS.labels(hypervisor_type or "", host_state).set(count)
    oldest = session.scalar(select(func.min(ComputeHost.last_heartbeat)).where(~down))
    HEARTBEAT_AGE_MAX.set((now - oldest).total_seconds() if oldest is not None else 0.0)
    DOWN_HOST_AGE.clear()
    rows = session.execute(
        select(ComputeHost.name, ComputeHost.last_heartbeat)
        .where(down, ComputeHost.last_heartbeat.is_not(None))
        .order_by(ComputeHost.last_heartbeat)
        .limit(DOWN_HOST_SERIES)
    )
    for name, beat in rows:
        if beat is not None:
            DOWN_HOST_AGE.labels(name).set((now - beat).total_seconds())
    TASKS_PENDING.set(
        session.scalar(select(func.count()).select_from(Task).where(Task.state == "pending")) or 0
    )
