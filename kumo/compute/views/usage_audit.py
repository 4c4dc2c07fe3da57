"""os-instance_usage_audit_log bodies (tempest's instance_usage_audit_logs schema)."""

from __future__ import annotations

from typing import Any

from kumo.compute.usage_audit import AuditLog


def show(log: AuditLog) -> dict[str, Any]:
    return {
        "hosts_not_run": list(log.hosts_not_run),
        "log": {},
        "num_hosts": log.num_hosts,
        "num_hosts_done": log.hosts_done,
        "num_hosts_not_run": len(log.hosts_not_run),
        "num_hosts_running": log.hosts_running,
        "overall_status": log.overall_status,
        "period_beginning": str(log.period_beginning),
        "period_ending": str(log.period_ending),
        "total_errors": log.total_errors,
        "total_instances": log.total_instances,
    }
