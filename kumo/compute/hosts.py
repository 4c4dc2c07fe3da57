"""Compute hosts: what agents register and heartbeat, and what os-hypervisors and os-services
show of them. One ComputeHost row is both Nova's nova-compute service and its hypervisor; its
resource provider (same uuid) carries the inventory the scheduler claims against."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import aggregates, params
from kumo.compute.models import AggregateHost, ComputeHost, Instance
from kumo.config import get_settings
from kumo.db import utcnow
from kumo.errors import BadRequest, Conflict, NotFound
from kumo.placement.models import Allocation, Inventory, ResourceProvider

COMPUTE_BINARY = "nova-compute"
# The control plane's services: shown in os-services and the internal zone, always up.
CONTROL_BINARIES = ("nova-scheduler", "nova-conductor")
INTERNAL_ZONE = "internal"
_SERVICE_NAMESPACE = uuid.UUID("6f1c1d6e-6b8b-4a43-9d6c-9c7b2f0f6a11")


# ---------------------------------------------------------------------------- agent protocol


def register_host(
    session: Session,
    name: str,
    *,
    vcpus: int,
    memory_mb: int,
    disk_gb: int,
    hypervisor_type: str = "fake",
    host_ip: str = "127.0.0.1",
    cpu_allocation_ratio: float = 16.0,
    ram_allocation_ratio: float = 1.5,
    disk_allocation_ratio: float = 1.0,
    reserved_memory_mb: int = 512,
) -> ComputeHost:
    """Create or refresh a host, its resource provider and inventory (idempotent).

    The provider generation is bumped only when the inventory actually changes, so a
    re-registration with the same numbers does not fail in-flight claims."""
    host = session.scalar(select(ComputeHost).where(ComputeHost.name == name))
    if host is None:
        provider = session.scalar(select(ResourceProvider).where(ResourceProvider.name == name))
        if provider is None:
            provider = ResourceProvider(uuid=str(uuid.uuid4()), name=name, generation=0)
            session.add(provider)
            session.flush()
        host = ComputeHost(
            name=name, uuid=provider.uuid, service_uuid=str(uuid.uuid4()), provider_id=provider.id
        )
        session.add(host)
    host.vcpus, host.memory_mb, host.disk_gb = vcpus, memory_mb, disk_gb
    host.hypervisor_type, host.host_ip = hypervisor_type, host_ip
    session.flush()
    wanted = {
        "VCPU": (vcpus, 0, cpu_allocation_ratio),
        "MEMORY_MB": (memory_mb, reserved_memory_mb, ram_allocation_ratio),
        "DISK_GB": (disk_gb, 0, disk_allocation_ratio),
    }
    if _sync_inventory(session, host.provider_id, wanted):
        session.execute(
            update(ResourceProvider)
            .where(ResourceProvider.id == host.provider_id)
            .values(generation=ResourceProvider.generation + 1)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return host


def _sync_inventory(session: Session, provider_id: int, wanted: dict[str, tuple[int, int, float]]) -> bool:
    """A class the host has none of gets no inventory (Placement refuses a total of 0), so a
    provider offers only what it has: a host reporting no VCPU is never in a VM's candidates."""
    current = {
        inv.resource_class: inv
        for inv in session.scalars(select(Inventory).where(Inventory.provider_id == provider_id))
    }
    changed = False
    for resource_class, (total, reserved, ratio) in wanted.items():
        if total <= 0:
            gone = current.pop(resource_class, None)
            # One still in use stays until its consumers go (Placement's InventoryInUse).
            if gone is not None and not _in_use(session, provider_id, resource_class):
                session.delete(gone)
                changed = True
            continue
        inv = current.get(resource_class)
        if inv is None:
            inv = Inventory(provider_id=provider_id, resource_class=resource_class)
            session.add(inv)
            changed = True
        elif (inv.total, inv.reserved, inv.allocation_ratio, inv.max_unit) != (total, reserved, ratio, total):
            changed = True
        inv.total, inv.reserved, inv.allocation_ratio = total, reserved, ratio
        inv.min_unit, inv.step_size, inv.max_unit = 1, 1, total
    return changed


def heartbeat(session: Session, name: str) -> None:
    """One UPDATE. NotFound when the host is unknown (deleted): the agent re-registers."""
    result = session.execute(
        update(ComputeHost)
        .where(ComputeHost.name == name)
        .values(last_heartbeat=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 1) == 0:
        raise NotFound(f"Compute host {name} could not be found.")


def is_up(host: ComputeHost, now: dt.datetime | None = None, timeout: float | None = None) -> bool:
    """Heartbeat within `timeout` seconds (default: settings) and not forced down."""
    limit = get_settings().heartbeat_timeout_seconds if timeout is None else timeout
    return beating(host.last_heartbeat, host.forced_down, now or utcnow(), limit)


def host_is_up(session: Session, name: str) -> bool:
    """Whether host `name`'s compute service is up; an unknown host (its service deleted) is not."""
    host = session.scalar(select(ComputeHost).where(ComputeHost.name == name))
    return host is not None and is_up(host)


def beating(last_heartbeat: dt.datetime | None, forced_down: bool, now: dt.datetime, timeout: float) -> bool:
    """The liveness rule, from a host's two columns (readers that do not load whole hosts: the
    scheduler's snapshot, the server list page)."""
    if forced_down or last_heartbeat is None:
        return False
    return (now - last_heartbeat).total_seconds() <= timeout


# ---------------------------------------------------------------------------- hypervisors


@dataclass(frozen=True)
class Hypervisor:
    host: ComputeHost
    up: bool
    vcpus_used: int = 0
    memory_mb_used: int = 0
    local_gb_used: int = 0
    running_vms: int = 0
    servers: list[tuple[str, str]] | None = None  # (name, uuid) when asked for

    @property
    def free_ram_mb(self) -> int:
        return self.host.memory_mb - self.memory_mb_used

    @property
    def free_disk_gb(self) -> int:
        return self.host.disk_gb - self.local_gb_used


def _usage(session: Session, provider_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Allocated plus reserved amounts per provider and resource class (two queries)."""
    ids = list(provider_ids)
    used: dict[int, dict[str, int]] = {pid: {} for pid in ids}
    if not ids:
        return used
    rows = session.execute(
        select(Allocation.provider_id, Allocation.resource_class, func.sum(Allocation.used))
        .where(Allocation.provider_id.in_(ids))
        .group_by(Allocation.provider_id, Allocation.resource_class)
    )
    for provider_id, resource_class, total in rows:
        used[provider_id][resource_class] = int(total or 0)
    reserved = session.execute(
        select(Inventory.provider_id, Inventory.resource_class, Inventory.reserved).where(
            Inventory.provider_id.in_(ids)
        )
    )
    for provider_id, resource_class, amount in reserved:
        by_class = used[provider_id]
        by_class[resource_class] = by_class.get(resource_class, 0) + int(amount or 0)
    return used


def _running_vms(session: Session, names: list[str]) -> dict[str, int]:
    if not names:
        return {}
    stmt = (
        select(Instance.host, func.count(Instance.id))
        .where(Instance.host.in_(names), Instance.deleted.is_(False))
        .group_by(Instance.host)
    )
    return {host: int(count) for host, count in session.execute(stmt) if host is not None}


def _servers(session: Session, names: list[str]) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {n: [] for n in names}
    if not names:
        return found
    stmt = (
        select(Instance.host, Instance.name, Instance.uuid)
        .where(Instance.host.in_(names), Instance.deleted.is_(False))
        .order_by(Instance.id)
    )
    for host, name, instance_uuid in session.execute(stmt):
        if host is not None:
            found[host].append((name, instance_uuid))
    return found


def _hypervisors(session: Session, hosts: list[ComputeHost], with_servers: bool = False) -> list[Hypervisor]:
    now = utcnow()
    usage = _usage(session, [h.provider_id for h in hosts])
    names = [h.name for h in hosts]
    running = _running_vms(session, names)
    servers = _servers(session, names) if with_servers else {}
    result = []
    for host in hosts:
        used = usage.get(host.provider_id, {})
        result.append(
            Hypervisor(
                host=host,
                up=is_up(host, now),
                vcpus_used=used.get("VCPU", 0),
                memory_mb_used=used.get("MEMORY_MB", 0),
                local_gb_used=used.get("DISK_GB", 0),
                running_vms=running.get(host.name, 0),
                servers=servers.get(host.name, []) if with_servers else None,
            )
        )
    return result


@dataclass(frozen=True)
class HypervisorQuery:
    pattern: str | None = None
    with_servers: bool = False
    limit: int | None = None
    marker: str | None = None


def list_hypervisors(
    session: Session, ctx: RequestContext, query: HypervisorQuery, *, uuid_ids: bool
) -> list[Hypervisor]:
    ctx.require_admin()
    stmt = select(ComputeHost).order_by(ComputeHost.id)
    if query.pattern is not None:
        if query.limit is not None or query.marker is not None:
            raise BadRequest(
                "Paging over hypervisors with the hypervisor_hostname_pattern query parameter "
                "is not supported."
            )
        stmt = stmt.where(ComputeHost.name.contains(query.pattern, autoescape=True))
        hosts = list(session.scalars(stmt))
        if not hosts:
            raise NotFound(f"No hypervisor matching '{query.pattern}' could be found.")
        return _hypervisors(session, hosts, query.with_servers)
    if query.marker is not None:
        marker = _find_host(session, query.marker, uuid_ids)
        if marker is None:
            raise BadRequest(f"marker [{query.marker}] not found")
        stmt = stmt.where(ComputeHost.id > marker.id)
    if query.limit is not None:
        stmt = stmt.limit(query.limit)
    return _hypervisors(session, list(session.scalars(stmt)), query.with_servers)


def _find_host(session: Session, hypervisor_id: str, uuid_ids: bool) -> ComputeHost | None:
    if uuid_ids:
        return session.scalar(select(ComputeHost).where(ComputeHost.uuid == hypervisor_id))
    number = params.db_int(hypervisor_id)
    return None if number is None else session.get(ComputeHost, number)


def get_hypervisor(
    session: Session, ctx: RequestContext, hypervisor_id: str, *, uuid_ids: bool, with_servers: bool = False
) -> Hypervisor:
    """By uuid from 2.53 (anything else is a 400), by integer id before (anything else a 404)."""
    ctx.require_admin()
    if uuid_ids and not params.is_uuid_like(hypervisor_id):
        raise BadRequest(f"Invalid uuid {hypervisor_id}")
    host = _find_host(session, hypervisor_id, uuid_ids)
    if host is None:
        raise NotFound(f"Hypervisor with ID '{hypervisor_id}' could not be found.")
    return _hypervisors(session, [host], with_servers)[0]


def search_hypervisors(
    session: Session, ctx: RequestContext, pattern: str, with_servers: bool
) -> list[Hypervisor]:
    """The pre-2.53 /os-hypervisors/{pattern}/search and /servers routes."""
    return list_hypervisors(
        session, ctx, HypervisorQuery(pattern=pattern, with_servers=with_servers), uuid_ids=False
    )


def uptime(
    session: Session, ctx: RequestContext, hypervisor_id: str, *, uuid_ids: bool
) -> tuple[Hypervisor, str]:
    hypervisor = get_hypervisor(session, ctx, hypervisor_id, uuid_ids=uuid_ids)
    text = uptime_text(hypervisor)
    if text is None:
        raise BadRequest(f"Compute service of {hypervisor.host.name} is unavailable at this time.")
    return hypervisor, text


def uptime_text(hypervisor: Hypervisor) -> str | None:
    """The host's uptime as `uptime` prints it; None when its service is down."""
    if not hypervisor.up:
        return None
    now = utcnow()
    seconds = int((now - hypervisor.host.created_at).total_seconds())
    days, rest = divmod(seconds, 86400)
    return (
        f" {now:%H:%M:%S} up {days} days, {rest // 3600:2d}:{rest % 3600 // 60:02d},  0 users,  "
        "load average: 0.00, 0.00, 0.00"
    )


@dataclass(frozen=True)
class Statistics:
    count: int = 0
    vcpus: int = 0
    memory_mb: int = 0
    local_gb: int = 0
    vcpus_used: int = 0
    memory_mb_used: int = 0
    local_gb_used: int = 0
    free_ram_mb: int = 0
    free_disk_gb: int = 0
    running_vms: int = 0
    current_workload: int = 0
    disk_available_least: int = 0


def statistics(session: Session, ctx: RequestContext) -> Statistics:
    """Sums over enabled hosts, as Nova's compute_node_statistics."""
    ctx.require_admin()
    hosts = list(session.scalars(select(ComputeHost).where(ComputeHost.disabled.is_(False))))
    hypervisors = _hypervisors(session, hosts)
    return Statistics(
        count=len(hypervisors),
        vcpus=sum(h.host.vcpus for h in hypervisors),
        memory_mb=sum(h.host.memory_mb for h in hypervisors),
        local_gb=sum(h.host.disk_gb for h in hypervisors),
        vcpus_used=sum(h.vcpus_used for h in hypervisors),
        memory_mb_used=sum(h.memory_mb_used for h in hypervisors),
        local_gb_used=sum(h.local_gb_used for h in hypervisors),
        free_ram_mb=sum(h.free_ram_mb for h in hypervisors),
        free_disk_gb=sum(h.free_disk_gb for h in hypervisors),
        running_vms=sum(h.running_vms for h in hypervisors),
        disk_available_least=sum(h.free_disk_gb for h in hypervisors),
    )


# ---------------------------------------------------------------------------- services


@dataclass(frozen=True)
class Service:
    id: int
    uuid: str
    binary: str
    host: str
    zone: str
    up: bool
    disabled: bool = False
    disabled_reason: str | None = None
    forced_down: bool = False
    updated_at: dt.datetime | None = None
    compute_host: ComputeHost | None = field(default=None, compare=False)


def control_host() -> str:
    return socket.gethostname()


def compute_service_id(host: ComputeHost) -> int:
    """Integer service ids (before 2.53): the control services take 1 and 2."""
    return host.id + len(CONTROL_BINARIES)


def _compute_service(host: ComputeHost, zone: str, now: dt.datetime) -> Service:
    return Service(
        id=compute_service_id(host),
        uuid=host.service_uuid,
        binary=COMPUTE_BINARY,
        host=host.name,
        zone=zone,
        up=is_up(host, now),
        disabled=host.disabled,
        disabled_reason=host.disabled_reason,
        forced_down=host.forced_down,
        updated_at=host.last_heartbeat,
        compute_host=host,
    )


def control_services(now: dt.datetime | None = None) -> list[Service]:
    name = control_host()
    return [
        Service(
            id=index + 1,
            uuid=str(uuid.uuid5(_SERVICE_NAMESPACE, f"{name}/{binary}")),
            binary=binary,
            host=name,
            zone=INTERNAL_ZONE,
            up=True,
            updated_at=now or utcnow(),
        )
        for index, binary in enumerate(CONTROL_BINARIES)
    ]


def list_services(
    session: Session, ctx: RequestContext, host: str | None = None, binary: str | None = None
) -> list[Service]:
    ctx.require_admin()
    now = utcnow()
    zones = aggregates.host_zones(session)
    services = control_services(now)
    for compute in session.scalars(select(ComputeHost).order_by(ComputeHost.id)):
        services.append(_compute_service(compute, zones.get(compute.name, aggregates.DEFAULT_ZONE), now))
    if host:
        services = [s for s in services if s.host == host]
    if binary:
        services = [s for s in services if s.binary == binary]
    return services


def _service_of(session: Session, host: ComputeHost) -> Service:
    return _compute_service(host, aggregates.availability_zone_of(session, host.name), utcnow())


@dataclass(frozen=True)
class ServiceUpdate:
    status: str | None = None  # "enabled" | "disabled"
    disabled_reason: str | None = None
    forced_down: bool | None = None


def parse_service_update(body: object) -> ServiceUpdate:
    """The 2.53 body: status and/or forced_down, with an optional disabled_reason."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid input for field/attribute body.")
    params.reject_unknown(body, {"status", "disabled_reason", "forced_down"}, "body")
    status = body.get("status")
    if status is not None and status not in ("enabled", "disabled"):
        raise BadRequest(
            f"Invalid input for field/attribute status. Value: {status}. "
            f"'{status}' is not one of ['enabled', 'disabled']"
        )
    reason = body.get("disabled_reason")
    if reason is not None and (not isinstance(reason, str) or not 1 <= len(reason) <= 255):
        raise BadRequest(f"Invalid input for field/attribute disabled_reason. Value: {reason!r}.")
    forced = body.get("forced_down")
    if "forced_down" in body:
        forced = params.strict_bool(forced, "forced_down")
    if status is None and "forced_down" not in body:
        raise BadRequest("No updates were requested. Fields 'status' or 'forced_down' should be specified.")
    if status == "enabled" and reason:
        raise BadRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.")
    return ServiceUpdate(status=status, disabled_reason=reason, forced_down=forced)


def update_service(session: Session, ctx: RequestContext, service_id: str, change: ServiceUpdate) -> Service:
    """PUT /os-services/{uuid} (2.53+)."""
    ctx.require_admin()
    if not params.is_uuid_like(service_id):
        raise BadRequest(f"Invalid uuid {service_id}")
    host = session.scalar(select(ComputeHost).where(ComputeHost.service_uuid == service_id))
    if host is None:
        control = next((s for s in control_services() if s.uuid == service_id), None)
        if control is not None:
            raise BadRequest(
                f"Updating a {control.binary} service is not supported. "
                "Only nova-compute services can be updated."
            )
        raise NotFound(f"Service {service_id} could not be found.")
    apply_update(host, change)
    session.flush()
    return _service_of(session, host)


def apply_update(host: ComputeHost, change: ServiceUpdate) -> None:
    """Write a service update (status, forced_down) onto the host (os-services, os-hosts)."""
    if change.status == "enabled":
        host.disabled, host.disabled_reason = False, None
    elif change.status == "disabled":
        host.disabled, host.disabled_reason = True, change.disabled_reason
    if change.forced_down is not None:
        host.forced_down = change.forced_down


LEGACY_ACTIONS = ("enable", "disable", "disable-log-reason", "force-down")


def legacy_update(
    session: Session, ctx: RequestContext, action: str, body: object, *, force_down_allowed: bool
) -> dict[str, object]:
    """PUT /os-services/{enable,disable,disable-log-reason,force-down} (before 2.53): the
    service is named by host and binary in the body; the answer echoes them."""
    ctx.require_admin()
    if action not in LEGACY_ACTIONS or (action == "force-down" and not force_down_allowed):
        raise NotFound("Unknown action")
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("host"), str)
        or not isinstance(body.get("binary"), str)
    ):
        raise BadRequest(
            "Invalid input for field/attribute body. 'host' and 'binary' are required properties"
        )
    host_name, binary = body["host"], body["binary"]
    if binary != COMPUTE_BINARY:
        raise BadRequest(
            f"Updating a {binary} service is not supported. Only nova-compute services can be updated."
        )
    host = session.scalar(select(ComputeHost).where(ComputeHost.name == host_name))
    if host is None:
        raise NotFound(f"Compute host {host_name} could not be found.")
    answer: dict[str, object] = {"host": host_name, "binary": binary}
    if action == "enable":
        apply_update(host, ServiceUpdate(status="enabled"))
        answer["status"] = "enabled"
    elif action in ("disable", "disable-log-reason"):
        reason = body.get("disabled_reason")
        if action == "disable-log-reason" and reason is None:
            raise BadRequest("Missing disabled reason field")
        apply_update(
            host, ServiceUpdate(status="disabled", disabled_reason=reason if action != "disable" else None)
        )
        answer["status"] = "disabled"
        if action == "disable-log-reason":
            answer["disabled_reason"] = reason
    else:
        if "forced_down" not in body:
            raise BadRequest("Missing forced_down field")
        forced = params.lenient_bool(body["forced_down"])
        apply_update(host, ServiceUpdate(forced_down=forced))
        answer["forced_down"] = forced
    session.flush()
    return answer


def delete_service(session: Session, ctx: RequestContext, service_id: str, *, uuid_ids: bool) -> None:
    """Remove a compute service: its host row, aggregate memberships and resource provider.
    Refused while instances live there."""
    ctx.require_admin()
    if uuid_ids:
        if not params.is_uuid_like(service_id):
            raise BadRequest(f"Invalid uuid {service_id}")
        host = session.scalar(select(ComputeHost).where(ComputeHost.service_uuid == service_id))
        control = [s for s in control_services() if s.uuid == service_id]
    else:
        number = params.integer_id(service_id)
        host = (
            session.get(ComputeHost, number - len(CONTROL_BINARIES))
            if number > len(CONTROL_BINARIES)
            else None
        )
        control = [s for s in control_services() if s.id == number]
    if control:
        raise BadRequest(f"Deleting a {control[0].binary} service is not supported.")
    if host is None:
        raise NotFound(f"Service {service_id} not found.")
    hosting = session.scalar(
        select(func.count(Instance.id)).where(Instance.host == host.name, Instance.deleted.is_(False))
    )
    if hosting:
        raise Conflict(
            "Unable to delete compute service that is hosting instances. "
            "Migrate or delete the instances first."
        )
    session.query(AggregateHost).filter(AggregateHost.host == host.name).delete()
    provider_id = host.provider_id
    session.delete(host)
    session.flush()
    session.query(Allocation).filter(Allocation.provider_id == provider_id).delete()
    session.query(Inventory).filter(Inventory.provider_id == provider_id).delete()
    session.query(ResourceProvider).filter(ResourceProvider.id == provider_id).delete()
    session.flush()


# ---------------------------------------------------------------------------- failure-domain labels
# A kumo extension (os-kumo-host-labels): rack and region per host; the availability zone stays
# aggregate metadata, as in Nova. Agents report labels at registration (`kumo agent --rack R`),
# baremetal nodes copy theirs from node properties, operators set them (`kumo hosts apply`).

LABELS = ("rack", "region")


@dataclass(frozen=True)
class HostLabels:
    host: str
    rack: str | None
    region: str | None
    availability_zone: str


def set_labels(session: Session, name: str, *, rack: str | None = None, region: str | None = None) -> None:
    """Set the labels given (None leaves one as it is)."""
    values = {k: v for k, v in (("rack", rack), ("region", region)) if v is not None}
    if values:
        session.execute(
            update(ComputeHost)
            .where(ComputeHost.name == name)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def parse_labels(body: object) -> dict[str, str | None]:
    """{"labels": {"rack": "r1", "region": null}}: a null clears a label; others are kept."""
    data = params.body_object(body, "labels")
    params.reject_unknown(data, set(LABELS), "labels")
    out: dict[str, str | None] = {}
    for key, value in data.items():
        if value is not None and (
            not isinstance(value, str) or not value.strip() or len(value) > 255 or not value.isprintable()
        ):
            raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value!r}.")
        out[key] = value.strip() if isinstance(value, str) else None
    return out


def _labels_of(host: ComputeHost, zones: dict[str, str]) -> HostLabels:
    return HostLabels(host.name, host.rack, host.region, zones.get(host.name, aggregates.DEFAULT_ZONE))


def list_labels(session: Session, ctx: RequestContext) -> list[HostLabels]:
    ctx.require_admin()
    zones = aggregates.host_zones(session)
    return [_labels_of(h, zones) for h in session.scalars(select(ComputeHost).order_by(ComputeHost.name))]


def update_labels(
    session: Session, ctx: RequestContext, host_name: str, labels: dict[str, str | None]
) -> HostLabels:
    ctx.require_admin()
    host = session.scalar(select(ComputeHost).where(ComputeHost.name == host_name))
    if host is None:
        raise NotFound(f"Compute host {host_name} could not be found.")
    for key, value in labels.items():
        setattr(host, key, value)
    session.flush()
    return _labels_of(host, aggregates.host_zones(session))


def _in_use(session: Session, provider_id: int, resource_class: str) -> bool:
    return (
        session.scalar(
            select(Allocation.id)
            .where(Allocation.provider_id == provider_id, Allocation.resource_class == resource_class)
            .limit(1)
        )
        is not None
    )
