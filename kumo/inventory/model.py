"""The inventory file and the cloud's current state, as plain data.

nodes:                      # baremetal nodes, enrolled through /baremetal
  - name: bm-r1-01
    driver: redfish
    resource_class: baremetal.small
    driver_info: {redfish_address: "http://10.0.0.1:8000", redfish_system_id: /redfish/v1/Systems/1}
    provision_state: available  # optional: enroll -> manage -> provide, waiting for each step
    properties: {cpus: 8, memory_mb: 16384, rack: r1, availability_zone: az1, region: RegionOne}
hosts:                      # failure-domain labels of hosts agents registered
  - {name: compute-1, rack: r1, region: RegionOne}
aggregates:
  - name: bm.small
    metadata: {baremetal: "true", filter_flavor_id: "<flavor id>"}
    hosts: [bm-r1-01, bm-r2-01]   # host names, or node names (resolved to the node's host)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NODE_FIELDS = ("driver", "resource_class", "driver_info", "properties")
TARGET_STATES = ("manageable", "available")


class InventoryError(ValueError):
    """The inventory file is not what `kumo hosts apply` reads."""


@dataclass(frozen=True)
class Node:
    name: str
    driver: str
    resource_class: str | None = None
    driver_info: Mapping[str, Any] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)
    provision_state: str | None = None  # a target in TARGET_STATES, or None: leave it be

    def fields(self) -> dict[str, Any]:
        return {
            "driver": self.driver,
            "resource_class": self.resource_class,
            "driver_info": dict(self.driver_info),
            "properties": dict(self.properties),
        }


@dataclass(frozen=True)
class HostLabels:
    name: str
    rack: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class AggregateSpec:
    name: str
    metadata: Mapping[str, str] = field(default_factory=dict)  # availability_zone included
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inventory:
    nodes: tuple[Node, ...] = ()
    hosts: tuple[HostLabels, ...] = ()
    aggregates: tuple[AggregateSpec, ...] = ()


@dataclass(frozen=True)
class CurrentNode:
    uuid: str
    name: str
    fields: Mapping[str, Any]
    provision_state: str = "enroll"


@dataclass(frozen=True)
class CurrentAggregate:
    id: str
    name: str
    metadata: Mapping[str, str]
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class Current:
    nodes: tuple[CurrentNode, ...] = ()
    labels: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)  # host -> rack, region
    aggregates: tuple[CurrentAggregate, ...] = ()


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InventoryError(f"{where}: expected a mapping, got {type(value).__name__}")
    return dict(value)


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InventoryError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _name(item: dict[str, Any], where: str) -> str:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise InventoryError(f"{where}: every entry needs a name")
    return name


def _unique(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InventoryError(f"{where}: {name} appears twice")
        seen.add(name)


def parse(data: Any) -> Inventory:
    """The inventory from a loaded YAML document (strict: unknown keys are errors)."""
    top = _mapping(data, "inventory")
    unknown = set(top) - {"nodes", "hosts", "aggregates"}
    if unknown:
        raise InventoryError(f"inventory: unknown sections {sorted(unknown)}")
    nodes = []
    for raw in _list(top.get("nodes"), "nodes"):
        item = _mapping(raw, "nodes[]")
        name = _name(item, "nodes")
        extra = set(item) - {"name", "provision_state", *NODE_FIELDS}
        if extra:
            raise InventoryError(f"node {name}: unknown keys {sorted(extra)}")
        if not isinstance(item.get("driver"), str):
            raise InventoryError(f"node {name}: driver is required")
        target = item.get("provision_state")
        if target is not None and target not in TARGET_STATES:
            raise InventoryError(f"node {name}: provision_state must be one of {list(TARGET_STATES)}")
        nodes.append(
            Node(
                name,
                item["driver"],
                item.get("resource_class"),
                _mapping(item.get("driver_info"), f"node {name} driver_info"),
                _mapping(item.get("properties"), f"node {name} properties"),
                target,
            )
        )
    hosts = []
    for raw in _list(top.get("hosts"), "hosts"):
        item = _mapping(raw, "hosts[]")
        name = _name(item, "hosts")
        extra = set(item) - {"name", "rack", "region"}
        if extra:
            raise InventoryError(f"host {name}: unknown keys {sorted(extra)}")
        hosts.append(HostLabels(name, item.get("rack"), item.get("region")))
    aggregates = []
    for raw in _list(top.get("aggregates"), "aggregates"):
        item = _mapping(raw, "aggregates[]")
        name = _name(item, "aggregates")
        extra = set(item) - {"name", "metadata", "hosts", "availability_zone"}
        if extra:
            raise InventoryError(f"aggregate {name}: unknown keys {sorted(extra)}")
        metadata = {str(k): str(v) for k, v in _mapping(item.get("metadata"), f"aggregate {name}").items()}
        if item.get("availability_zone"):
            metadata["availability_zone"] = str(item["availability_zone"])
        members = [str(h) for h in _list(item.get("hosts"), f"aggregate {name} hosts")]
        _unique(members, f"aggregate {name} hosts")
        aggregates.append(AggregateSpec(name, metadata, tuple(members)))
    _unique([n.name for n in nodes], "nodes")
    _unique([h.name for h in hosts], "hosts")
    _unique([a.name for a in aggregates], "aggregates")
    return Inventory(tuple(nodes), tuple(hosts), tuple(aggregates))
