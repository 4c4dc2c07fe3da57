"""Prometheus metrics, one registry per process (multiprocess workers each expose their own)."""

from __future__ import annotations

import datetime as dt
import os

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from kumo.db import utcnow

REQUEST_LATENCY = Histogram(
    "kumo_http_request_seconds",
    "API request latency by route and status",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SCHEDULE_SECONDS = Histogram(
    "kumo_schedule_seconds",
    "Time to pick a host for one instance (pure scheduling, no I/O)",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)
CLAIM_SECONDS = Histogram(
    "kumo_claim_seconds",
    "Time to commit one claim (generation compare-and-swap)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
SCHEDULE_CLAIM_SECONDS = Histogram(
    "kumo_schedule_claim_seconds",
    "Scheduler time for one instance, committed: its share of its pass's fleet read, the filters "
    "and weighers, and its claim (for a pass of one instance, the latency it saw)",
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
CLAIM_CONFLICTS = Counter("kumo_claim_conflicts_total", "Claims lost to a concurrent generation change")
SCHEDULE_FAILURES = Counter("kumo_no_valid_host_total", "Instances that found no valid host")
# The fleet's liveness as aggregates: a series per host made every scrape of a 20,000-host fleet
# 1.2 MB and 1.4 s. Only the hosts that are down get a series of their own (the ones to act on).
HOSTS = Gauge(
    "kumo_hosts",
    "Compute hosts (hypervisors and baremetal nodes) by type and liveness",
    ["hypervisor_type", "state"],
)
HEARTBEAT_AGE_MAX = Gauge(
    "kumo_agent_heartbeat_age_max_seconds", "Seconds since the oldest heartbeat of a host that is up"
)
DOWN_HOST_AGE = Gauge(
    "kumo_agent_down_heartbeat_age_seconds",
    "Seconds since the last heartbeat of each host that is down (the 1,000 oldest)",
    ["host"],
)
TASKS_PENDING = Gauge("kumo_tasks_pending", "Work rows not yet finished by agents")
# Each API worker keeps its own registry: its pid tells the pages apart (workers spawned together
# can share a process_start_time_seconds).
WORKER_PID = Gauge("kumo_api_worker_pid", "Process id of the API worker that answered this scrape")
WORKER_PID.set_function(os.getpid)
DOWN_HOST_SERIES = 1000


def fleet_gauges(session: Session, heartbeat_timeout: float) -> None:
    """Refresh the gauges read from the database, at scrape time: hosts counted by type and
    liveness in SQL (one row per type and state, whatever the fleet's size), the oldest live
    heartbeat, and a series per down host, at most DOWN_HOST_SERIES of them."""
    from kumo.compute.models import ComputeHost
    from kumo.work.models import Task

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
