"""plan(inventory, current, prune) -> the changes that make the cloud match the inventory.
Pure: no I/O. Applying the plan and planning again gives no changes (idempotent).

Without `prune` a plan only adds and updates; with it, it also deletes nodes and aggregates the
inventory does not list, removes hosts it does not list from the aggregates it does, and drops
metadata keys it does not list. Private stock (aggregates with baremetal='true' and
filter_tenant_id, made by stock approvals) belongs to the stock workflow: never pruned, and a
host in it is not put back into another stock aggregate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kumo.inventory.model import Current, CurrentAggregate, Inventory

CREATE, UPDATE, DELETE = "create", "update", "delete"
MASKED = "******"
ADD_HOST, REMOVE_HOST, SET_METADATA, SET_LABELS, SKIP, PROVISION = (
    "add_host",
    "remove_host",
    "set_metadata",
    "set_labels",
    "skip",
    "provision",
)
# Ironic's verbs from a stable state towards a target state (kumo.baremetal.states).
STEPS: dict[tuple[str, str], tuple[str, ...]] = {
    ("enroll", "manageable"): ("manage",),
    ("enroll", "available"): ("manage", "provide"),
    ("manageable", "available"): ("provide",),
    ("available", "manageable"): ("manage",),
}
SETTLED = {("active", "available")}  # in use: counts as available


@dataclass(frozen=True)
class Change:
    kind: str  # node | host | aggregate
    name: str
    op: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        sign = {CREATE: "+", ADD_HOST: "+", DELETE: "-", REMOVE_HOST: "-", SKIP: "!"}.get(self.op, "~")
        extra = ", ".join(f"{k}={v}" for k, v in self.details.items() if k != "uuid")
        return f"{sign} {self.kind} {self.name}: {self.op}" + (f" ({extra})" if extra else "")


def is_private_stock(metadata: Mapping[str, str]) -> bool:
    return str(metadata.get("baremetal", "")).lower() == "true" and any(
        k.startswith("filter_tenant_id") for k in metadata
    )


def _is_stock(metadata: Mapping[str, str]) -> bool:
    return str(metadata.get("baremetal", "")).lower() == "true"


def _changed_fields(wanted: Mapping[str, Any], have: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level fields that differ; for dicts, only the keys the inventory names count (the
    cloud may add its own, e.g. Ironic's defaults)."""
    changed: dict[str, Any] = {}
    for key, value in wanted.items():
        current = have.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            # Secrets read back masked ("******", as Ironic shows passwords) cannot be compared.
            if any(current.get(k) != v and current.get(k) != MASKED for k, v in value.items()):
                changed[key] = value
        elif value is not None and current != value:
            changed[key] = value
    return changed


def plan(inventory: Inventory, current: Current, prune: bool = False) -> list[Change]:
    changes: list[Change] = []
    nodes_by_name = {n.name: n for n in current.nodes}
    # Nodes first: aggregates may name them.
    for node in inventory.nodes:
        have = nodes_by_name.get(node.name)
        if have is None:
            changes.append(Change("node", node.name, CREATE, node.fields()))
            continue
        diff = _changed_fields(node.fields(), have.fields)
        if diff:
            changes.append(Change("node", node.name, UPDATE, {"uuid": have.uuid, **diff}))
    for node in inventory.nodes:
        state = nodes_by_name[node.name].provision_state if node.name in nodes_by_name else "enroll"
        target = node.provision_state
        if target is None or state == target or (state, target) in SETTLED:
            continue
        steps = STEPS.get((state, target))
        if steps is None:
            changes.append(Change("node", node.name, SKIP, {"reason": f"{state}, not moved to {target}"}))
        else:
            changes.append(Change("node", node.name, PROVISION, {"target": target, "steps": "+".join(steps)}))
    # A node is a host named by its uuid; the inventory may name it by node name.
    host_of = {n.name: n.uuid for n in current.nodes}

    for labels in inventory.hosts:
        host = host_of.get(labels.name, labels.name)
        rack, region = current.labels.get(host, (None, None))
        wanted = {"rack": labels.rack, "region": labels.region}
        diff = {k: v for k, v in wanted.items() if v is not None and v != {"rack": rack, "region": region}[k]}
        if host not in current.labels and labels.name not in host_of:
            changes.append(Change("host", labels.name, SKIP, {"reason": "no such host"}))
        elif diff:
            changes.append(Change("host", labels.name, SET_LABELS, {"host": host, **diff}))

    current_aggs = {a.name: a for a in current.aggregates}
    private_hosts = {h: a.name for a in current.aggregates if is_private_stock(a.metadata) for h in a.hosts}
    for spec in inventory.aggregates:
        agg_have = current_aggs.get(spec.name) or CurrentAggregate("", spec.name, {}, ())
        if spec.name not in current_aggs:
            changes.append(Change("aggregate", spec.name, CREATE))
        metadata: dict[str, str | None] = {
            k: v for k, v in spec.metadata.items() if agg_have.metadata.get(k) != v
        }
        if prune:
            metadata.update({k: None for k in agg_have.metadata if k not in spec.metadata})
        if metadata:
            changes.append(Change("aggregate", spec.name, SET_METADATA, {"metadata": metadata}))
        wanted_hosts = [host_of.get(h, h) for h in spec.hosts]
        for name, host in zip(spec.hosts, wanted_hosts, strict=True):
            if host in agg_have.hosts:
                continue
            if _is_stock(spec.metadata) and host in private_hosts and private_hosts[host] != spec.name:
                changes.append(
                    Change(
                        "aggregate", spec.name, SKIP, {"host": name, "reason": f"in {private_hosts[host]}"}
                    )
                )
                continue
            changes.append(Change("aggregate", spec.name, ADD_HOST, {"host": host}))
        if prune and not is_private_stock(agg_have.metadata):
            for host in agg_have.hosts:
                if host not in wanted_hosts:
                    changes.append(Change("aggregate", spec.name, REMOVE_HOST, {"host": host}))

    if prune:
        listed = {a.name for a in inventory.aggregates}
        for agg in current.aggregates:
            if agg.name in listed or is_private_stock(agg.metadata):
                continue
            for host in agg.hosts:
                changes.append(Change("aggregate", agg.name, REMOVE_HOST, {"host": host}))
            changes.append(Change("aggregate", agg.name, DELETE, {"id": agg.id}))
        wanted_nodes = {n.name for n in inventory.nodes}
        for have_node in current.nodes:
            if have_node.name not in wanted_nodes:
                changes.append(Change("node", have_node.name, DELETE, {"uuid": have_node.uuid}))
    return changes
