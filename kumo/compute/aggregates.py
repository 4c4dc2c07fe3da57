"""Host aggregates and the availability zones they define (Nova's os-aggregates and
os-availability-zone). A zone is an aggregate's `availability_zone` metadata; hosts in no such
aggregate are in the default zone "nova"."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import params
from kumo.compute.models import Aggregate, AggregateHost, ComputeHost, Instance
from kumo.db import utcnow
from kumo.errors import BadRequest, Conflict, NotFound
from kumo.validation import MAX_INT, int_text

DEFAULT_ZONE = "nova"
INTERNAL_ZONE = "internal"
AZ_KEY = "availability_zone"
UUID_VERSION = "2.41"
_METADATA_KEY_RE = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")


# ---------------------------------------------------------------------------- zones


def host_zones(session: Session) -> dict[str, str]:
    """host name -> zone, for hosts in an aggregate with a zone (the first such aggregate wins,
    as in the scheduler's snapshot)."""
    rows = session.execute(
        select(AggregateHost.host, Aggregate.metadata_)
        .join(Aggregate, Aggregate.id == AggregateHost.aggregate_id)
        .order_by(Aggregate.id)
    )
    zones: dict[str, str] = {}
    for host, metadata in rows:
        zone = (metadata or {}).get(AZ_KEY)
        if zone and host not in zones:
            zones[host] = zone
    return zones


def availability_zone_of(session: Session, host_name: str) -> str:
    rows = session.scalars(
        select(Aggregate.metadata_)
        .join(AggregateHost, AggregateHost.aggregate_id == Aggregate.id)
        .where(AggregateHost.host == host_name)
        .order_by(Aggregate.id)
    )
    for metadata in rows:
        zone = (metadata or {}).get(AZ_KEY)
        if zone:
            return str(zone)
    return DEFAULT_ZONE


@dataclass(frozen=True)
class Zone:
    name: str
    available: bool
    hosts: tuple[ComputeHost, ...]  # the enabled compute hosts in it


def list_zones(session: Session) -> list[Zone]:
    """Zones with at least one compute host: available when one of them is enabled."""
    zones = host_zones(session)
    members: dict[str, list[ComputeHost]] = {}
    for host in session.scalars(select(ComputeHost).order_by(ComputeHost.name)):
        members.setdefault(zones.get(host.name, DEFAULT_ZONE), []).append(host)
    result = []
    for name in sorted(members):
        enabled = tuple(h for h in members[name] if not h.disabled)
        result.append(Zone(name=name, available=bool(enabled), hosts=enabled))
    return result


def zone_exists(session: Session, name: str) -> bool:
    """Whether server create may ask for this zone: one of the available ones."""
    return any(zone.name == name and zone.available for zone in list_zones(session))


# ---------------------------------------------------------------------------- aggregates


@dataclass(frozen=True)
class AggregateInfo:
    aggregate: Aggregate
    hosts: tuple[str, ...]

    @property
    def availability_zone(self) -> str | None:
        zone = (self.aggregate.metadata_ or {}).get(AZ_KEY)
        return str(zone) if zone else None


def _hosts_of(session: Session, aggregate_ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {i: [] for i in aggregate_ids}
    if aggregate_ids:
        rows = session.execute(
            select(AggregateHost.aggregate_id, AggregateHost.host)
            .where(AggregateHost.aggregate_id.in_(aggregate_ids))
            .order_by(AggregateHost.host)
        )
        for aggregate_id, host in rows:
            found[aggregate_id].append(host)
    return found


def _info(session: Session, aggregate: Aggregate) -> AggregateInfo:
    return AggregateInfo(aggregate, tuple(_hosts_of(session, [aggregate.id])[aggregate.id]))


def list_aggregates(session: Session, ctx: RequestContext) -> list[AggregateInfo]:
    ctx.require_admin()
    aggregates = list(session.scalars(select(Aggregate).order_by(Aggregate.id)))
    hosts = _hosts_of(session, [a.id for a in aggregates])
    return [AggregateInfo(a, tuple(hosts[a.id])) for a in aggregates]


def _get(session: Session, aggregate_id: str) -> Aggregate:
    """The aggregate the path names; an id that is not integer text names none (404, as Nova)."""
    number = int_text(aggregate_id, 0, MAX_INT)
    aggregate = None if number is None else session.get(Aggregate, number)
    if aggregate is None:
        raise NotFound(f"Aggregate {aggregate_id} could not be found.")
    return aggregate


def get_aggregate(session: Session, ctx: RequestContext, aggregate_id: str) -> AggregateInfo:
    ctx.require_admin()
    return _info(session, _get(session, aggregate_id))


def _zone_value(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 255:
        raise BadRequest(f"Invalid input for field/attribute availability_zone. Value: {value!r}.")
    value = value.strip()
    if ":" in value:
        raise BadRequest(
            f"Invalid input for field/attribute availability_zone. Value: {value}. "
            "An availability zone name cannot contain ':'"
        )
    return value


@dataclass(frozen=True)
class AggregateChange:
    name: str | None = None
    availability_zone: str | None = None
    sets_zone: bool = False  # whether availability_zone was given (None then removes it)


def parse_create(body: Any) -> AggregateChange:
    data = params.body_object(body, "aggregate")
    params.reject_unknown(data, {"name", AZ_KEY}, "aggregate")
    if "name" not in data:
        raise BadRequest("Invalid input for field/attribute aggregate. 'name' is a required property")
    zone = _zone_value(data.get(AZ_KEY))
    return AggregateChange(
        name=params.name_value(data["name"]), availability_zone=zone, sets_zone=zone is not None
    )


def parse_update(body: Any) -> AggregateChange:
    data = params.body_object(body, "aggregate")
    params.reject_unknown(data, {"name", AZ_KEY}, "aggregate")
    if not data:
        raise BadRequest("Invalid input for field/attribute aggregate. {} does not have enough properties")
    name = params.name_value(data["name"]) if "name" in data else None
    return AggregateChange(
        name=name, availability_zone=_zone_value(data.get(AZ_KEY)), sets_zone=AZ_KEY in data
    )


def create_aggregate(session: Session, ctx: RequestContext, change: AggregateChange) -> AggregateInfo:
    ctx.require_admin()
    name = change.name or ""
    if change.availability_zone == INTERNAL_ZONE:
        raise BadRequest(
            f"Cannot create aggregate {name}. Reason: Aggregates cannot use the internal availability zone."
        )
    if session.scalar(select(Aggregate.id).where(Aggregate.name == name)) is not None:
        raise Conflict(f"Aggregate {name} already exists.")
    metadata = {AZ_KEY: change.availability_zone} if change.availability_zone else {}
    aggregate = Aggregate(uuid=str(uuid.uuid4()), name=name, metadata_=metadata)
    session.add(aggregate)
    session.flush()
    return AggregateInfo(aggregate, ())


def _zone_conflicts(session: Session, aggregate: Aggregate, hosts: list[str], zone: str) -> list[str]:
    """The other zones these hosts are already in, through other aggregates."""
    if not hosts:
        return []
    others = session.scalars(
        select(Aggregate)
        .join(AggregateHost, AggregateHost.aggregate_id == Aggregate.id)
        .where(AggregateHost.host.in_(hosts), Aggregate.id != aggregate.id)
    )
    return sorted({str(z) for a in others if (z := (a.metadata_ or {}).get(AZ_KEY)) and z != zone})


def _check_zone_change(session: Session, aggregate: Aggregate, zone: str | None, what: str) -> None:
    """Nova's is_safe_to_update_az for a new zone on an existing aggregate (400 when unsafe)."""
    current = (aggregate.metadata_ or {}).get(AZ_KEY)
    if zone == current:
        return
    if zone == INTERNAL_ZONE:
        raise BadRequest(
            f"{what} {aggregate.id}. Reason: Aggregates cannot use the internal availability zone."
        )
    hosts = _hosts_of(session, [aggregate.id])[aggregate.id]
    if zone is not None:
        conflicts = _zone_conflicts(session, aggregate, hosts, zone)
        if conflicts:
            raise BadRequest(
                f"{what} {aggregate.id}. Reason: "
                f"One or more hosts already in availability zone(s) {conflicts}."
            )
    if hosts and session.scalar(
        select(func.count(Instance.id)).where(Instance.host.in_(hosts), Instance.deleted.is_(False))
    ):
        raise BadRequest(f"{what} {aggregate.id}. Reason: One or more hosts contain instances in this zone.")


def update_aggregate(
    session: Session, ctx: RequestContext, aggregate_id: str, change: AggregateChange
) -> AggregateInfo:
    ctx.require_admin()
    aggregate = _get(session, aggregate_id)
    if change.name is not None and change.name != aggregate.name:
        if session.scalar(select(Aggregate.id).where(Aggregate.name == change.name)) is not None:
            raise Conflict(f"Aggregate {change.name} already exists.")
        aggregate.name = change.name
    if change.sets_zone:
        _check_zone_change(session, aggregate, change.availability_zone, "Cannot update aggregate")
        metadata = {k: v for k, v in (aggregate.metadata_ or {}).items() if k != AZ_KEY}
        if change.availability_zone:
            metadata[AZ_KEY] = change.availability_zone
        aggregate.metadata_ = metadata
    aggregate.updated_at = utcnow()
    session.flush()
    return _info(session, aggregate)


def delete_aggregate(session: Session, ctx: RequestContext, aggregate_id: str) -> None:
    ctx.require_admin()
    aggregate = _get(session, aggregate_id)
    if _hosts_of(session, [aggregate.id])[aggregate.id]:
        raise BadRequest(f"Cannot remove aggregate {aggregate.id}. Reason: Host aggregate is not empty.")
    session.delete(aggregate)
    session.flush()


@dataclass(frozen=True)
class Action:
    name: str  # add_host | remove_host | set_metadata
    host: str | None = None
    metadata: dict[str, str | None] | None = None


def parse_action(body: Any) -> Action:
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid aggregate action: exactly one action is expected.")
    name, args = next(iter(body.items()))
    if name in ("add_host", "remove_host"):
        if not isinstance(args, dict) or set(args) != {"host"} or not isinstance(args["host"], str):
            raise BadRequest(f"Invalid input for field/attribute {name}. 'host' is a required property")
        return Action(name=name, host=params.name_value(args["host"], "host"))
    if name == "set_metadata":
        if not isinstance(args, dict) or set(args) != {"metadata"} or not isinstance(args["metadata"], dict):
            raise BadRequest(
                "Invalid input for field/attribute set_metadata. 'metadata' is a required property"
            )
        metadata: dict[str, str | None] = {}
        for key, value in args["metadata"].items():
            if not _METADATA_KEY_RE.match(key):
                raise BadRequest(
                    f"Invalid input for field/attribute metadata. Value: {key}. Does not match pattern"
                )
            if value is not None and (not isinstance(value, str) or len(value) > 255):
                raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value!r}.")
            metadata[key] = value
        return Action(name=name, metadata=metadata)
    raise BadRequest(f"There is no such action: {name}")


def add_host(session: Session, ctx: RequestContext, aggregate_id: str, host_name: str) -> AggregateInfo:
    ctx.require_admin()
    aggregate = _get(session, aggregate_id)
    if session.scalar(select(ComputeHost.id).where(ComputeHost.name == host_name)) is None:
        raise NotFound(f"Compute host {host_name} could not be found.")
    if session.get(AggregateHost, (aggregate.id, host_name)) is not None:
        raise Conflict(f"Aggregate {aggregate.id} already has host {host_name}.")
    zone = (aggregate.metadata_ or {}).get(AZ_KEY)
    if zone:
        conflicts = _zone_conflicts(session, aggregate, [host_name], zone)
        if conflicts:
            raise Conflict(
                f"Cannot add host to aggregate {aggregate.id}. Reason: One or more hosts already in "
                f"availability zone(s) {conflicts}."
            )
    session.add(AggregateHost(aggregate_id=aggregate.id, host=host_name))
    aggregate.updated_at = utcnow()
    session.flush()
    return _info(session, aggregate)


def remove_host(session: Session, ctx: RequestContext, aggregate_id: str, host_name: str) -> AggregateInfo:
    ctx.require_admin()
    aggregate = _get(session, aggregate_id)
    row = session.get(AggregateHost, (aggregate.id, host_name))
    if row is None:
        raise NotFound(f"Cannot remove host {host_name} in aggregate {aggregate.id}")
    session.delete(row)
    aggregate.updated_at = utcnow()
    session.flush()
    return _info(session, aggregate)


def set_metadata(
    session: Session, ctx: RequestContext, aggregate_id: str, metadata: dict[str, str | None]
) -> AggregateInfo:
    """Merge `metadata` into the aggregate's; a null value deletes the key."""
    ctx.require_admin()
    aggregate = _get(session, aggregate_id)
    if AZ_KEY in metadata:
        zone = metadata[AZ_KEY]
        if zone is not None:
            zone = _zone_value(zone)
            if not zone:
                raise BadRequest(
                    f"Cannot update metadata of aggregate {aggregate.id}. Reason: Aggregate {aggregate.name} "
                    "does not support empty named availability zone."
                )
        _check_zone_change(session, aggregate, zone, "Cannot update metadata of aggregate")
    merged = dict(aggregate.metadata_ or {})
    for key, value in metadata.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    aggregate.metadata_ = merged
    aggregate.updated_at = utcnow()
    session.flush()
    return _info(session, aggregate)
