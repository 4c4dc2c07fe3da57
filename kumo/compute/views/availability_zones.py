"""os-availability-zone bodies: the zone list, and the admin detail with hosts and services."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kumo.compute.aggregates import Zone
from kumo.compute.hosts import COMPUTE_BINARY, INTERNAL_ZONE, Service
from kumo.compute.views import isotime


def index(zones: Sequence[Zone]) -> dict[str, Any]:
    return {
        "availabilityZoneInfo": [
            {"zoneName": z.name, "zoneState": {"available": z.available}, "hosts": None} for z in zones
        ]
    }


def _service(service: Service) -> dict[str, Any]:
    return {
        "available": service.up,
        "active": not service.disabled,
        "updated_at": isotime(service.updated_at),
    }


def detail(zones: Sequence[Zone], services: Sequence[Service]) -> dict[str, Any]:
    """The internal zone (control services) first, then each compute zone with its enabled hosts."""
    internal: dict[str, dict[str, Any]] = {}
    compute: dict[str, dict[str, Any]] = {}
    for service in services:
        if service.binary == COMPUTE_BINARY:
            compute[service.host] = _service(service)
        else:
            internal.setdefault(service.host, {})[service.binary] = _service(service)
    info: list[dict[str, Any]] = []
    if internal:
        info.append({"zoneName": INTERNAL_ZONE, "zoneState": {"available": True}, "hosts": internal})
    for zone in zones:
        if not zone.available:
            info.append({"zoneName": zone.name, "zoneState": {"available": False}, "hosts": None})
            continue
        hosts = {h.name: {COMPUTE_BINARY: compute[h.name]} for h in zone.hosts if h.name in compute}
        info.append({"zoneName": zone.name, "zoneState": {"available": True}, "hosts": hosts})
    return {"availabilityZoneInfo": info}
