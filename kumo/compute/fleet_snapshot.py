"""Read the fleet, or a part of it, into a scheduler Snapshot, in a few queries, none per host.

The whole fleet: hosts, inventories, usage, aggregates, server groups (and the hosts of the
instances a request names for same_host/different_host). A part (the scheduler's sample): the
hosts with their inventories, usage and aggregates (and the private stock) in one statement.

Order matters for the claim protocol (see kumo.placement.claims): provider generations are read
by the first query, usage and inventory after it (or in the same statement). Under READ
COMMITTED a claim committed between the queries shows up in usage with its generation bump
unseen, so the snapshot is conservative and the later compare-and-swap fails; it can never
show an old usage with a new generation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import replace
from functools import cache
from typing import Any

from sqlalchemy import JSON, String, func, literal, literal_column, null, or_, select, type_coerce, union_all
from sqlalchemy.orm import Session

from kumo.compute.hosts import beating
from kumo.compute.models import Aggregate, AggregateHost, ComputeHost, Instance
from kumo.db import utcnow
from kumo.placement.models import Allocation, Inventory, ResourceProvider
from kumo.scheduler import capacity as capacity_rule
from kumo.scheduler.snapshot import HostState, Snapshot
from kumo.store.protocol import Store, store_of

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
    if provider_ids is not None:
        part = _read_part(session, provider_ids, host_names, stock_exclusive)
        rows, capacity, max_unit, used, aggregates, stock_metadata = part
    else:
        rows, capacity, max_unit, used = _read_whole(session)
        aggregates, stock_metadata = _read_aggregates(session, stock_exclusive)

    hosts = []
    for name, provider_id, disabled, forced_down, heartbeat, generation, rack, region, suspect in rows:
        host_aggregates = aggregates.get(name, [])
        zones = [m["availability_zone"] for m in host_aggregates if m.get("availability_zone")]
        hosts.append(
            HostState(
                name=name,
                provider_id=provider_id,
                generation=generation,
                availability_zone=zones[0] if zones else default_availability_zone,
                up=beating(heartbeat, forced_down, now, heartbeat_timeout),
                enabled=not disabled,
                capacity=capacity.get(provider_id, {}),
                used=used.get(provider_id, {}),
                max_unit=max_unit.get(provider_id, {}),
                aggregates=tuple(host_aggregates),
                rack=rack,
                region=region,
                canary_suspect=bool(suspect),
            )
        )
    snapshot = Snapshot.of(
        hosts, _group_hosts(session, group_uuids), hosts_of_instances(session, instance_uuids)
    )
    if stock_metadata is not None:
        snapshot = replace(snapshot, private_stock=_private_stock(stock_metadata))
    return snapshot


_HOST_COLUMNS = (
    ComputeHost.name,
    ComputeHost.provider_id,
    ComputeHost.disabled,
    ComputeHost.forced_down,
    ComputeHost.last_heartbeat,
    ResourceProvider.generation,
    ComputeHost.rack,
    ComputeHost.region,
    ComputeHost.canary_suspect,
)
_HostRow = tuple[str, int, bool, bool, "dt.datetime | None", int, "str | None", "str | None", bool]
_PerProvider = dict[int, dict[str, int]]


def _read_whole(session: Session) -> tuple[list[_HostRow], _PerProvider, _PerProvider, _PerProvider]:
    """Every host: hosts with their generations first, then inventories, then usage summed
    per provider and class (see the module's docstring for why in that order)."""
    rows = session.execute(
        select(*_HOST_COLUMNS)
        .join(ResourceProvider, ResourceProvider.id == ComputeHost.provider_id)
        .order_by(ComputeHost.name)
    ).all()
    capacity: _PerProvider = {}
    max_unit: _PerProvider = {}
    inventories = select(
        Inventory.provider_id, Inventory.resource_class, Inventory.total, Inventory.reserved,
        Inventory.allocation_ratio, Inventory.max_unit,
    )  # fmt: skip
    for provider_id, resource_class, total, reserved, ratio, unit in session.execute(inventories):
        capacity.setdefault(provider_id, {})[resource_class] = capacity_rule.capacity(total, reserved, ratio)
        max_unit.setdefault(provider_id, {})[resource_class] = unit
    used: _PerProvider = {}
    usage = select(Allocation.provider_id, Allocation.resource_class, func.sum(Allocation.used)).group_by(
        Allocation.provider_id, Allocation.resource_class
    )
    for provider_id, resource_class, total in session.execute(usage):
        used.setdefault(provider_id, {})[resource_class] = int(total or 0)
    return [tuple(row) for row in rows], capacity, max_unit, used  # type: ignore[misc]


_Aggregates = dict[str, list[dict[str, str]]]
_Stock = list[dict[str, str]] | None  # the private stock's aggregates, when it is exclusive
# The kinds of row of a part's read, in this order: a host and one of its inventories (or
# none), an aggregate holding one of the hosts, an aggregate of the private stock.
_INVENTORY, _MEMBERSHIP, _STOCK = 0, 1, 2


def _read_part(
    session: Session, provider_ids: Collection[int], host_names: Collection[str], stock_exclusive: bool
) -> tuple[list[_HostRow], _PerProvider, _PerProvider, _PerProvider, _Aggregates, _Stock]:
    """The hosts of `provider_ids` and those named, in one statement (one round trip, one
    database snapshot): a row per host and inventory, with the usage of that class summed
    beside it (the covering index of allocations by provider and class answers it); then a row
    per aggregate holding one of those hosts, in aggregate order; then, with `stock_exclusive`,
    a row per aggregate holding any host (the private stock is a property of the whole fleet,
    not of the hosts read). Usage of a class the host has no inventory of is not read: no
    request can land there for that class anyway."""
    found = session.connection().execute(
        _part_statement(store_of(session), stock_exclusive),
        {"provider_ids": sorted(provider_ids), "host_names": sorted(host_names)},
    )
    rows: list[_HostRow] = []
    capacity: _PerProvider = {}
    max_unit: _PerProvider = {}
    used: _PerProvider = {}
    aggregates: _Aggregates = {}
    stock: _Stock = [] if stock_exclusive else None
    for row in found:
        kind, name = row[0], row[1]
        if kind == _MEMBERSHIP:
            aggregates.setdefault(name, []).append(dict(row[16] or {}))
            continue
        if kind == _STOCK:
            assert stock is not None
            stock.append(dict(row[16] or {}))
            continue
        host: _HostRow = tuple(row[1:10])  # type: ignore[assignment]
        if not rows or rows[-1][0] != name:
            rows.append(host)
        resource_class, total, reserved, ratio, unit, amount = row[10:16]
        if resource_class is None:
            continue  # a host with no inventory yet
        provider_id = host[1]
        capacity.setdefault(provider_id, {})[resource_class] = capacity_rule.capacity(total, reserved, ratio)
        max_unit.setdefault(provider_id, {})[resource_class] = unit
        if amount:
            used.setdefault(provider_id, {})[resource_class] = int(amount)
    return rows, capacity, max_unit, used, aggregates, stock


@cache
def _part_statement(store: Store, stock_exclusive: bool) -> Any:
    """_read_part's statement, built once per store and shape (every pass of a scheduler runs
    it): three kinds of row in one UNION ALL, the columns a kind does not use NULL."""
    chosen = or_(
        store.one_of_param(ComputeHost.provider_id, "provider_ids"),
        store.one_of_param(ComputeHost.name, "host_names"),
    )
    usage = (
        select(func.sum(Allocation.used))
        .where(
            Allocation.provider_id == Inventory.provider_id,
            Allocation.resource_class == Inventory.resource_class,
        )
        .scalar_subquery()
    )
    # Typed, so that the column decodes as JSON on every backend (its type is the first part's).
    no_aggregate = (type_coerce(null(), JSON).label("metadata"), null().label("aggregate_id"))
    no_host = (null(),) * 14
    inventories = (
        select(
            literal(_INVENTORY).label("kind"),
            *_HOST_COLUMNS,
            Inventory.resource_class,
            Inventory.total,
            Inventory.reserved,
            Inventory.allocation_ratio,
            Inventory.max_unit,
            usage,
            *no_aggregate,
        )  # fmt: skip
        .join(ResourceProvider, ResourceProvider.id == ComputeHost.provider_id)
        .outerjoin(Inventory, Inventory.provider_id == ComputeHost.provider_id)
        .where(chosen)
    )
    memberships = (
        select(literal(_MEMBERSHIP), AggregateHost.host, *no_host, Aggregate.metadata_, Aggregate.id)
        .join(Aggregate, Aggregate.id == AggregateHost.aggregate_id)
        .where(AggregateHost.host.in_(select(ComputeHost.name).where(chosen)))
    )
    parts: list[Any] = [inventories, memberships]
    if stock_exclusive:
        parts.append(
            select(literal(_STOCK), null(), *no_host, Aggregate.metadata_, Aggregate.id).where(
                select(AggregateHost.host).where(AggregateHost.aggregate_id == Aggregate.id).exists()
            )
        )
    # By position (kind, host name, aggregate id): SQLite orders a compound select only by its
    # result columns.
    return union_all(*parts).order_by(*(literal_column(str(position)) for position in (1, 2, 18)))


def _read_aggregates(
    session: Session, stock_exclusive: bool
) -> tuple[_Aggregates, list[dict[str, str]] | None]:
    """In one statement: the metadata of each aggregate holding each host, in aggregate order;
    and with `stock_exclusive`, the metadata of every aggregate that holds a host, for the
    private stock (one row per aggregate, not per membership)."""
    memberships = select(AggregateHost.host, Aggregate.metadata_, Aggregate.id).join(
        Aggregate, Aggregate.id == AggregateHost.aggregate_id
    )
    statement: Any = memberships
    if stock_exclusive:
        holding = select(literal(None, String).label("host"), Aggregate.metadata_, Aggregate.id).where(
            select(AggregateHost.host).where(AggregateHost.aggregate_id == Aggregate.id).exists()
        )
        statement = union_all(memberships, holding)
    aggregates: _Aggregates = {}
    stock: list[dict[str, str]] | None = [] if stock_exclusive else None
    for host_name, metadata, _ in session.execute(statement.order_by(statement.selected_columns[2])):
        if host_name is None:
            assert stock is not None
            stock.append(dict(metadata or {}))
        else:
            aggregates.setdefault(host_name, []).append(dict(metadata or {}))
    return aggregates, stock


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
