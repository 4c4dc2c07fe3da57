"""Nova's os-hosts API (removed at 2.43; `openstack host list/show/set` and tempest still use
it below): the compute hosts with their zone, one host's resources (total, used now, the most
its servers may use, and per project), enabling or disabling a host's compute service, and the
host power actions, which kumo's hypervisors do not implement (Nova's libvirt answers 501 too).
Every call is admin-only; a host kumo does not know is a 404."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import aggregates, hosts
from kumo.compute.models import ComputeHost, Instance
from kumo.errors import BadRequest, NotFound, NotImplementedYet

SERVICE = "compute"  # Nova's service topic for a compute host
POWER_ACTIONS = ("startup", "shutdown", "reboot")
_SPELLINGS = ("enable", "disable", "Enable", "Disable", "ENABLE", "DISABLE")


@dataclass(frozen=True)
class HostEntry:
    host_name: str
    service: str
    zone: str


@dataclass(frozen=True)
class Resource:
    host: str
    project: str  # "(total)", "(used_now)", "(used_max)" or a project id
    cpu: int
    memory_mb: int
    disk_gb: int


@dataclass(frozen=True)
class HostUpdate:
    status: str | None = None  # "enable" | "disable"
    maintenance_mode: str | None = None


def list_hosts(session: Session, ctx: RequestContext, zone: str | None) -> list[HostEntry]:
    """Every compute host with its zone; `zone` (when not empty) keeps that zone's hosts."""
    ctx.require_admin()
    zones = aggregates.host_zones(session)
    entries = [
        HostEntry(name, SERVICE, zones.get(name, aggregates.DEFAULT_ZONE))
        for name in session.scalars(select(ComputeHost.name).order_by(ComputeHost.id))
    ]
    return [e for e in entries if e.zone == zone] if zone else entries


def _host(session: Session, name: str) -> ComputeHost:
    host = session.scalar(select(ComputeHost).where(ComputeHost.name == name))
    if host is None:
        raise NotFound(f"Compute host {name} could not be found.")
    return host


def _disk_gb(flavor: dict[str, Any] | None) -> int:
    flavor = flavor or {}
    return int(flavor.get("disk") or 0) + int(flavor.get("ephemeral") or 0)


def show_host(session: Session, ctx: RequestContext, name: str) -> list[Resource]:
    """The host's resources, in Nova's order: (total), (used_now) (placement's allocations plus
    what is reserved), (used_max) (the sum of its servers' flavors), then one per project with
    servers there (sorted by project id)."""
    ctx.require_admin()
    host = _host(session, name)
    hypervisor = hosts.get_hypervisor(session, ctx, str(host.id), uuid_ids=False)
    resources = [
        Resource(name, "(total)", host.vcpus, host.memory_mb, host.disk_gb),
        Resource(
            name, "(used_now)", hypervisor.vcpus_used, hypervisor.memory_mb_used, hypervisor.local_gb_used
        ),
    ]
    per_project: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    rows = session.execute(
        select(Instance.project_id, Instance.vcpus, Instance.memory_mb, Instance.flavor).where(
            Instance.host == name, Instance.deleted.is_(False)
        )
    )
    for project_id, vcpus, memory_mb, flavor in rows:
        sums = per_project[project_id]
        sums[0] += int(vcpus or 0)
        sums[1] += int(memory_mb or 0)
        sums[2] += _disk_gb(flavor)
    totals = [sum(values[i] for values in per_project.values()) for i in range(3)]
    resources.append(Resource(name, "(used_max)", *totals))
    resources.extend(Resource(name, project, *per_project[project]) for project in sorted(per_project))
    return resources


def parse_update(body: object) -> HostUpdate:
    """Nova's body: `status` and/or `maintenance_mode`, each "enable" or "disable" (in lower,
    title or upper case), nothing else. A key given as null is invalid, as in Nova's schema
    (tempest's client sends the key it was not given as null: that is a 400 in Nova too)."""
    if not isinstance(body, dict) or not ({"status", "maintenance_mode"} & set(body)):
        raise BadRequest("Invalid input for field/attribute body. 'status' or 'maintenance_mode' is required")
    unknown = sorted(set(body) - {"status", "maintenance_mode"})
    if unknown:
        raise BadRequest(
            f"Additional properties are not allowed ({', '.join(map(repr, unknown))} were unexpected)"
        )
    values: dict[str, str | None] = {"status": None, "maintenance_mode": None}
    for key in values:
        if key not in body:
            continue
        value = body[key]
        if not isinstance(value, str) or value not in _SPELLINGS:
            raise BadRequest(
                f"Invalid input for field/attribute {key}. Value: {value}. "
                f"{value!r} is not one of {list(_SPELLINGS)}"
            )
        values[key] = value.lower()
    return HostUpdate(status=values["status"], maintenance_mode=values["maintenance_mode"])


def update_host(session: Session, ctx: RequestContext, name: str, change: HostUpdate) -> dict[str, str]:
    """Enable or disable the host's compute service (as os-services does); maintenance mode is a
    hypervisor feature kumo's drivers lack: 501, as Nova's libvirt driver answers."""
    ctx.require_admin()
    host = _host(session, name)
    if change.maintenance_mode is not None:
        raise NotImplementedYet("Virt driver does not implement host maintenance mode.")
    status = "enabled" if change.status == "enable" else "disabled"
    hosts.apply_update(host, hosts.ServiceUpdate(status=status))
    return {"host": name, "status": status}


def power_action(session: Session, ctx: RequestContext, name: str, action: str) -> None:
    """startup / shutdown / reboot of a whole host: kumo's hypervisors do not implement host
    power management, so a known host is Nova's 501 (an unknown one 404, a non-admin 403)."""
    ctx.require_admin()
    if action not in POWER_ACTIONS:
        raise NotFound("The resource could not be found.")
    _host(session, name)
    raise NotImplementedYet("Virt driver does not implement host power management.")
