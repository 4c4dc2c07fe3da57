"""os-services bodies (uuid ids from 2.53, forced_down from 2.11)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kumo.compute.hosts import Service
from kumo.compute.microversion import Microversion
from kumo.compute.views import isotime

UUID_VERSION = "2.53"
FORCED_DOWN_VERSION = "2.11"


def service(s: Service, mv: Microversion) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": s.uuid if mv.at_least(UUID_VERSION) else s.id,
        "binary": s.binary,
        "host": s.host,
        "zone": s.zone,
        "status": "disabled" if s.disabled else "enabled",
        "state": "up" if s.up else "down",
        "updated_at": isotime(s.updated_at),
        "disabled_reason": s.disabled_reason,
    }
    if mv.at_least(FORCED_DOWN_VERSION):
        body["forced_down"] = s.forced_down
    return body


def index(services: Sequence[Service], mv: Microversion) -> dict[str, Any]:
    return {"services": [service(s, mv) for s in services]}


def show(s: Service, mv: Microversion) -> dict[str, Any]:
    return {"service": service(s, mv)}
