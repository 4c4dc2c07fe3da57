"""Read the whole fleet into a scheduler Snapshot in five queries, none per host (six when
the request names instances for same_host/different_host).

Order matters for the claim protocol (see kumo.placement.claims): provider generations are read
by the first query, usage and inventory after it. Under READ COMMITTED a claim committed between
the queries shows up in usage with its generation bump unseen, so the snapshot is conservative
and the later compare-and-swap fails; it can never show an old usage with a new generation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import replace

from sqlalchemy import ColumnElement, false, func, or_, select, true
from sqlalchemy.orm import Session

from kumo.compute.models import Aggregate, AggregateHost, ComputeHost, Instance
from kumo.db import utcnow
from kumo.placement.models import Allocation, Inventory, ResourceProvider
from kumo.scheduler.snapshot import HostState, Snapshot

DEFAULT_AVAILABILITY_ZONE = "nova"


def load_snapshot(
    session: Session,
    heartbeat_timeout: float = 30.0,
    *,
    now: dt.datetime | None = None,
    instance_uuids: Iterable[str] = (),
    default_availability_zone: str = DEFAULT_AVAILABILITY_ZONE,
    stock_exclusive: bool = False,
    provider_ids: Collection[int] | None = None,
    host_names: Collection[str] = (),
    group_uuids: Collection[str] | None = None,
) -> Snapshot:
    """The fleet as the scheduler sees it. `instance_uuids`: the same_host/different_host
    instances of the request(s) about to be scheduled (see hosts_of_instances). `stock_exclusive`:
    projects with private stock may land on no public stock (the stock_private_exclusive setting).

    A part of the fleet when `provider_ids` is given: the hosts of those providers (the
    scheduler's resource prefilter, kumo.placement.candidates) plus the hosts named in
    `host_names`; `group_uuids` limits the server-group counts to those groups."""
    now = now or utcnow()
    partial = provider_ids is not None
    chosen: ColumnElement[bool] = true()
    if partial:
        chosen = or_(
            ComputeHost.provider_id.in_(sorted(provider_ids or ())) if provider_ids else false(),
            ComputeHost.name.in_(sorted(host_names)) if host_names else false(),
        )
    rows = session.execute(
        select(
            ComputeHost.name,
            ComputeHost.provider_id,
            ComputeHost.disabled,
            ComputeHost.forced_down,
            ComputeHost.last_heartbeat,
            ResourceProvider.generation,
            ComputeHost.rack,
            ComputeHost.region,
        )
        .join(ResourceProvider, ResourceProvider.id == ComputeHost.provider_id)
        .where(chosen)
        .order_by(ComputeHost.name)
    ).all()
    ids = sorted({row[1] for row in rows})
    names = [row[0] for row in rows]

    capacity: dict[int, dict[str, int]] = {}
    max_unit: dict[int, dict[str, int]] = {}
    inventories = select(
        Inventory.provider_id, Inventory.resource_class, Inventory.total, Inventory.reserved,
        Inventory.allocation_ratio, Inventory.max_unit,
    )  # fmt: skip
    if partial:
        inventories = inventories.where(Inventory.provider_id.in_(ids))
    for provider_id, resource_class, total, reserved, ratio, unit in session.execute(inventories):
        capacity.setdefault(provider_id, {})[resource_class] = int((total - reserved) * ratio)
        max_unit.setdefault(provider_id, {})[resource_class] = unit

    used: dict[int, dict[str, int]] = {}
    usage = select(Allocation.provider_id, Allocation.resource_class, func.sum(Allocation.used)).group_by(
        Allocation.provider_id, Allocation.resource_class
    )
    if partial:
        usage = usage.where(Allocation.provider_id.in_(ids))
    for provider_id, resource_class, total in session.execute(usage):
        used.setdefault(provider_id, {})[resource_class] = int(total or 0)

    aggregates: dict[str, list[dict[str, str]]] = {}
    memberships = select(AggregateHost.host, Aggregate.metadata_).join(
        Aggregate, Aggregate.id == AggregateHost.aggregate_id
    )
    if partial:
        memberships = memberships.where(AggregateHost.host.in_(names))
    for host_name, metadata in session.execute(memberships.order_by(Aggregate.id)):
        aggregates.setdefault(host_name, []).append(dict(metadata or {}))

    hosts = []
    for name, provider_id, disabled, forced_down, heartbeat, generation, rack, region in rows:
        host_aggregates = aggregates.get(name, [])
        zones = [m["availability_zone"] for m in host_aggregates if m.get("availability_zone")]
        hosts.append(
            HostState(
                name=name,
                provider_id=provider_id,
                generation=generation,
                availability_zone=zones[0] if zones else default_availability_zone,
                up=_is_up(heartbeat, forced_down, now, heartbeat_timeout),
                enabled=not disabled,
                capacity=capacity.get(provider_id, {}),
                used=used.get(provider_id, {}),
                max_unit=max_unit.get(provider_id, {}),
                aggregates=tuple(host_aggregates),
                rack=rack,
                region=region,
            )
        )
    snapshot = Snapshot.of(
        hosts, _group_hosts(session, group_uuids), hosts_of_instances(session, instance_uuids)
    )
    if stock_exclusive:
        # Private stock is a property of the whole fleet, not of the hosts read: the metadata of
        # every aggregate that holds a host (one row per aggregate, not per membership).
        holding = select(Aggregate.metadata_).where(
            select(AggregateHost.host).where(AggregateHost.aggregate_id == Aggregate.id).exists()
        )
        metadata_rows = [dict(m or {}) for m in session.scalars(holding)]
        snapshot = replace(snapshot, private_stock=_private_stock(metadata_rows))
    return snapshot


def _private_stock(aggregates: Iterable[dict[str, str]]) -> frozenset[tuple[str, str]]:
    """(project, flavor id) for each filter_tenant_id* project and filter_flavor_id flavor of a
    baremetal='true' aggregate holding hosts (private stock); flavor "*" when it names none."""
    found: set[tuple[str, str]] = set()
    for metadata in aggregates:
        if str(metadata.get("baremetal", "")).lower() != "true":
            continue
        flavors = _split(metadata.get("filter_flavor_id", "")) or {"*"}
        for key, value in metadata.items():
            if key.startswith("filter_tenant_id"):
                found.update((project, flavor) for project in _split(value) for flavor in flavors)
    return frozenset(found)


def _split(value: object) -> set[str]:
    return {v.strip() for v in str(value).split(",") if v.strip()}


def hosts_of_instances(session: Session, uuids: Iterable[str]) -> dict[str, str]:
    """instance uuid -> host for the live, placed instances among `uuids` (one query)."""
    wanted: Collection[str] = set(uuids)
    if not wanted:
        return {}
    rows = session.execute(
        select(Instance.uuid, Instance.host).where(
            Instance.uuid.in_(wanted), Instance.deleted.is_(False), Instance.host.is_not(None)
        )
    )
    return {uuid: host for uuid, host in rows if host is not None}


def _group_hosts(session: Session, group_uuids: Collection[str] | None = None) -> dict[str, dict[str, int]]:
    """server group uuid -> host -> number of the group's live instances there (every group's,
    or only those of `group_uuids`)."""
    if group_uuids is not None and not group_uuids:
        return {}
    in_group = (
        Instance.server_group.is_not(None)
        if group_uuids is None
        else Instance.server_group.in_(sorted(group_uuids))
    )
    rows = session.execute(
        select(Instance.server_group, Instance.host, func.count())
        .where(Instance.deleted.is_(False), Instance.host.is_not(None), in_group)
        .group_by(Instance.server_group, Instance.host)
    )
    groups: dict[str, dict[str, int]] = {}
    for group_uuid, host, count in rows:
        if group_uuid is not None and host is not None:
            groups.setdefault(group_uuid, {})[host] = int(count)
    return groups


def _is_up(heartbeat: dt.datetime | None, forced_down: bool, now: dt.datetime, timeout: float) -> bool:
    if forced_down or heartbeat is None:
        return False
    return (now - heartbeat).total_seconds() <= timeout
