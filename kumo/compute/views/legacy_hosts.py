"""os-hosts bodies (tempest's list_hosts and get_host_detail schemas)."""

from __future__ import annotations

from typing import Any

from kumo.compute.legacy_hosts import HostEntry, Resource


def index(entries: list[HostEntry]) -> dict[str, Any]:
    return {"hosts": [{"host_name": e.host_name, "service": e.service, "zone": e.zone} for e in entries]}


def show(resources: list[Resource]) -> dict[str, Any]:
    return {
        "host": [
            {
                "resource": {
                    "host": r.host,
                    "project": r.project,
                    "cpu": r.cpu,
                    "memory_mb": r.memory_mb,
                    "disk_gb": r.disk_gb,
                }
            }
            for r in resources
        ]
    }
