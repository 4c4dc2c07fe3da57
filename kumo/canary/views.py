"""os-kumo-canaries bodies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kumo.canary.models import CanaryRun
from kumo.canary.service import HostHealth


def _time(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def run(row: CanaryRun) -> dict[str, Any]:
    return {
        "id": row.uuid,
        "scope": row.scope,
        "target": row.target,
        "availability_zone": row.availability_zone,
        "host": row.host,
        "ok": row.ok,
        "failed_step": row.failed_step,
        "error": row.error,
        "steps": list(row.steps or []),
        "server_id": row.server_id,
        "request_id": row.request_id,
        "seconds": row.seconds,
        "verdict": row.verdict,
        "started_at": _time(row.started_at),
        "finished_at": _time(row.finished_at),
    }


def host(health: HostHealth) -> dict[str, Any]:
    return {
        "host": health.host,
        "verdict": str(health.verdict),
        "consecutive_failures": health.consecutive_failures,
        "down_weighted": health.suspect,
        "disabled": health.disabled,
        "disabled_reason": health.disabled_reason,
        "last_run": run(health.last_run) if health.last_run is not None else None,
    }


def index(runs: Sequence[CanaryRun], hosts: Sequence[HostHealth]) -> dict[str, Any]:
    return {"canaries": [run(r) for r in runs], "hosts": [host(h) for h in hosts]}


def show(row: CanaryRun) -> dict[str, Any]:
    return {"canary": run(row)}
