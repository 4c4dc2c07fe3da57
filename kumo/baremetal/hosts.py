"""A node is a host: its ComputeHost row and resource provider (both named by the node's uuid),
one unit of its resource class as inventory, its availability zone by aggregate membership and
its rack/region copied onto the host.

Every inventory change bumps the provider generation in the same transaction, so a scheduler
claim made against an older picture of the node fails its compare-and-swap (kumo.placement.claims).
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from kumo.baremetal import states
from kumo.baremetal.models import Node
from kumo.compute.models import Aggregate, AggregateHost, ComputeHost
from kumo.compute.node_hosts import BAREMETAL_HYPERVISOR_TYPE
from kumo.db import utcnow
from kumo.errors import BadRequest
from kumo.placement.api_models import CustomResourceClass
from kumo.placement.models import Allocation, Inventory, ResourceProvider
from kumo.store.protocol import store_of

AZ_KEY = "availability_zone"
# Failure-domain labels a node's properties carry.
LABELS = ("rack", "availability_zone", "region")
# Ironic's hardware interfaces (shown on nodes; kumo picks them from the driver).
INTERFACES = (
    "bios",
    "boot",
    "console",
    "deploy",
    "firmware",
    "inspect",
    "management",
    "network",
    "power",
    "raid",
    "rescue",
    "storage",
    "vendor",
)


def resource_class_name(node: Node) -> str | None:
    """Ironic's rule (and Nova's): `baremetal-gold` → CUSTOM_BAREMETAL_GOLD."""
    if not node.resource_class:
        return None
    cleaned = "".join(c if c.isalnum() else "_" for c in node.resource_class.upper())
    return cleaned if cleaned.startswith("CUSTOM_") else f"CUSTOM_{cleaned}"


def _int_property(node: Node, key: str) -> int:
    value = (node.properties or {}).get(key, 0)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid value for property {key}: {value!r} is not an integer.") from None


def ensure_host(session: Session, node: Node) -> ComputeHost:
    """Create or refresh the node's host and provider, labels, zone and inventory."""
    host = session.scalar(select(ComputeHost).where(ComputeHost.name == node.uuid))
    if host is None:
        provider = session.scalar(select(ResourceProvider).where(ResourceProvider.name == node.uuid))
        if provider is None:
            provider = ResourceProvider(uuid=node.uuid, name=node.uuid, generation=0)
            session.add(provider)
            session.flush()
        host = ComputeHost(
            name=node.uuid,
            uuid=provider.uuid,
            service_uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"kumo:baremetal:{node.uuid}")),
            provider_id=provider.id,
            hypervisor_type=BAREMETAL_HYPERVISOR_TYPE,
        )
        session.add(host)
    host.vcpus = _int_property(node, "cpus")
    host.memory_mb = _int_property(node, "memory_mb")
    host.disk_gb = _int_property(node, "local_gb")
    _copy_labels(node, host)
    session.flush()
    _sync_zone(session, node)
    sync_inventory(session, node, host)
    return host


def _copy_labels(node: Node, host: ComputeHost) -> None:
    """rack and region onto the host (the scheduler's failure domains read them there)."""
    props = node.properties or {}
    rack, region = props.get("rack"), props.get("region")
    host.rack = str(rack) if rack not in (None, "") else None
    host.region = str(region) if region not in (None, "") else None


def _sync_zone(session: Session, node: Node) -> None:
    """When the node names an availability zone: membership of the first aggregate carrying that
    zone (created, named after the zone, when missing), and of no other zoned aggregate. Without
    the property, memberships are left as operators made them; other aggregates (stock, …) are
    never touched."""
    zone = (node.properties or {}).get(AZ_KEY)
    if not zone:
        return
    zone = str(zone)
    zoned = [
        agg
        for agg in session.scalars(
            select(Aggregate)
            .join(AggregateHost, AggregateHost.aggregate_id == Aggregate.id)
            .where(AggregateHost.host == node.uuid)
        )
        if (agg.metadata_ or {}).get(AZ_KEY)
    ]
    if len(zoned) == 1 and (zoned[0].metadata_ or {}).get(AZ_KEY) == zone:
        return
    for aggregate in zoned:
        session.execute(
            delete(AggregateHost).where(
                AggregateHost.aggregate_id == aggregate.id, AggregateHost.host == node.uuid
            )
        )
    target = next(
        (
            a
            for a in session.scalars(select(Aggregate).order_by(Aggregate.id))
            if (a.metadata_ or {}).get(AZ_KEY) == zone
        ),
        None,
    )
    if target is None:
        name = zone
        if session.scalar(select(Aggregate.id).where(Aggregate.name == name)) is not None:
            name = f"az-{zone}"
        target = Aggregate(uuid=str(uuid.uuid4()), name=name, metadata_={AZ_KEY: zone})
        session.add(target)
        session.flush()
    session.add(AggregateHost(aggregate_id=target.id, host=node.uuid))
    session.flush()


def sync_inventory(session: Session, node: Node, host: ComputeHost | None = None) -> None:
    """One unit of the node's class, reserved unless the scheduler may pick the node (available
    and not in maintenance) or an instance holds it (its allocation must stay valid)."""
    if host is None:
        host = session.scalar(select(ComputeHost).where(ComputeHost.name == node.uuid))
        if host is None:
            return
    rc = resource_class_name(node)
    reserved = 0 if states.offered(node.provision_state, node.maintenance) or node.instance_uuid else 1
    current = {
        inv.resource_class: inv
        for inv in session.scalars(select(Inventory).where(Inventory.provider_id == host.provider_id))
    }
    changed = False
    for name, stale in current.items():
        if name != rc:
            session.delete(stale)
            changed = True
    if rc is not None:
        # Nodes of a new class enrolled at once all create it: one must not fail the others.
        store_of(session).insert_if_absent(session, CustomResourceClass, {"name": rc}, ["name"])
        inv = current.get(rc)
        if inv is None:
            session.add(
                Inventory(
                    provider_id=host.provider_id,
                    resource_class=rc,
                    total=1,
                    reserved=reserved,
                    min_unit=1,
                    max_unit=1,
                    step_size=1,
                    allocation_ratio=1.0,
                )
            )
            changed = True
        elif inv.reserved != reserved:
            inv.reserved = reserved
            changed = True
    if changed:
        session.execute(
            update(ResourceProvider)
            .where(ResourceProvider.id == host.provider_id)
            .values(generation=ResourceProvider.generation + 1, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        session.flush()


def remove_host(session: Session, node: Node) -> None:
    """Drop the node's host, memberships, provider and inventory (the node holds no instance)."""
    host = session.scalar(select(ComputeHost).where(ComputeHost.name == node.uuid))
    session.execute(delete(AggregateHost).where(AggregateHost.host == node.uuid))
    if host is None:
        return
    provider_id = host.provider_id
    session.delete(host)
    session.flush()
    session.execute(delete(Allocation).where(Allocation.provider_id == provider_id))
    session.execute(delete(Inventory).where(Inventory.provider_id == provider_id))
    session.execute(delete(ResourceProvider).where(ResourceProvider.id == provider_id))
    session.flush()
