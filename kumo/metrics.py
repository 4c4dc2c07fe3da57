"""Prometheus metrics, one registry per process (multiprocess workers each expose their own)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select
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
CLAIM_CONFLICTS = Counter("kumo_claim_conflicts_total", "Claims lost to a concurrent generation change")
SCHEDULE_FAILURES = Counter("kumo_no_valid_host_total", "Instances that found no valid host")
HEARTBEAT_AGE = Gauge("kumo_agent_heartbeat_age_seconds", "Seconds since each agent's heartbeat", ["host"])
TASKS_PENDING = Gauge("kumo_tasks_pending", "Work rows not yet finished by agents")


def fleet_gauges(session: Session) -> None:
    """Refresh the gauges read from the database, at scrape time (two small queries)."""
    from kumo.agent.models import Task
    from kumo.compute.models import ComputeHost

    now = utcnow()
    HEARTBEAT_AGE.clear()
    for name, beat in session.execute(select(ComputeHost.name, ComputeHost.last_heartbeat)):
        if beat is not None:
            HEARTBEAT_AGE.labels(name).set((now - beat).total_seconds())
    TASKS_PENDING.set(
        session.scalar(select(func.count()).select_from(Task).where(Task.state == "pending")) or 0
    )
