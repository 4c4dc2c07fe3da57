"""The canaries' gauges, read from their results at scrape time (GET /metrics), so every API
worker shows the same: per zone and host canaried, whether its last canary passed, how long it
took and how old it is; the hosts the canaries down-weighted and disabled."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.canary.models import CanaryRun
from kumo.canary.policy import CANARY_REASON
from kumo.compute.models import ComputeHost
from kumo.db import utcnow
from kumo.metrics import CANARY_HOSTS, CANARY_LAST_AGE, CANARY_LAST_OK, CANARY_LAST_SECONDS, CANARY_SERIES


def canary_gauges(session: Session) -> None:
    now = utcnow()
    seen: set[tuple[str, str]] = set()
    for gauge in (CANARY_LAST_OK, CANARY_LAST_SECONDS, CANARY_LAST_AGE):
        gauge.clear()
    runs = select(CanaryRun.scope, CanaryRun.target, CanaryRun.ok, CanaryRun.seconds, CanaryRun.finished_at)
    for scope, target, ok, seconds, finished in session.execute(
        runs.order_by(CanaryRun.id.desc()).limit(CANARY_SERIES)
    ):
        if (scope, target) in seen:
            continue
        seen.add((scope, target))
        CANARY_LAST_OK.labels(scope, target).set(1 if ok else 0)
        CANARY_LAST_SECONDS.labels(scope, target).set(seconds)
        CANARY_LAST_AGE.labels(scope, target).set(max(0.0, (now - finished).total_seconds()))
    down_weighted = session.scalar(select(func.count()).where(ComputeHost.canary_suspect.is_(True)))
    disabled = session.scalar(
        select(func.count()).where(
            ComputeHost.disabled.is_(True), ComputeHost.disabled_reason == CANARY_REASON
        )
    )
    CANARY_HOSTS.labels("down_weighted").set(down_weighted or 0)
    CANARY_HOSTS.labels("disabled").set(disabled or 0)
