"""plan(): one row per situation, then idempotence and prune properties."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from kumo.inventory import diff as d
from kumo.inventory.model import (
    AggregateSpec,
    Current,
    CurrentAggregate,
    CurrentNode,
    HostLabels,
    Inventory,
    InventoryError,
    Node,
    parse,
)

NODE = Node("bm1", "redfish", "baremetal.small", {"redfish_address": "http://b:8000"}, {"rack": "r1"})
HAVE_NODE = CurrentNode("u-bm1", "bm1", NODE.fields())
AVAILABLE = Node(NODE.name, NODE.driver, NODE.resource_class, NODE.driver_info, NODE.properties, "available")
IN_USE = CurrentNode("u-bm1", "bm1", NODE.fields(), "active")
STOCK = {"baremetal": "true", "filter_flavor_id": "f1"}
PRIVATE = {**STOCK, "filter_tenant_id": "p1"}


@dataclass
class Case:
    id: str
    inventory: Inventory
    current: Current
    expected: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    prune: bool = False


CASES = [
    Case("empty", Inventory(), Current()),
    Case("node/new", Inventory(nodes=(NODE,)), Current(), [("node", "bm1", "create", NODE.fields())]),
    Case("node/same", Inventory(nodes=(NODE,)), Current(nodes=(HAVE_NODE,))),
    Case(
        "node/changed-property",
        Inventory(nodes=(Node("bm1", "redfish", "baremetal.small", NODE.driver_info, {"rack": "r2"}),)),
        Current(nodes=(HAVE_NODE,)),
        [("node", "bm1", "update", {"uuid": "u-bm1", "properties": {"rack": "r2"}})],
    ),
    Case(
        "node/masked-password-is-not-a-change",
        Inventory(nodes=(Node("bm1", "redfish", "baremetal.small", {"redfish_password": "s3cret"}),)),
        Current(
            nodes=(
                CurrentNode("u-bm1", "bm1", {**NODE.fields(), "driver_info": {"redfish_password": "******"}}),
            )
        ),
    ),
    Case(
        "node/extra-cloud-keys-ignored",
        Inventory(nodes=(NODE,)),
        Current(
            nodes=(
                CurrentNode("u-bm1", "bm1", {**NODE.fields(), "properties": {"rack": "r1", "cpu_arch": "x"}}),
            )
        ),
    ),
    Case("node/absent-kept", Inventory(), Current(nodes=(HAVE_NODE,))),
    Case(
        "node/new-to-available",
        Inventory(nodes=(AVAILABLE,)),
        Current(),
        [
            ("node", "bm1", "create", NODE.fields()),
            ("node", "bm1", "provision", {"target": "available", "steps": "manage+provide"}),
        ],
    ),
    Case(
        "node/manageable-to-available",
        Inventory(nodes=(AVAILABLE,)),
        Current(nodes=(CurrentNode("u-bm1", "bm1", NODE.fields(), "manageable"),)),
        [("node", "bm1", "provision", {"target": "available", "steps": "provide"})],
    ),
    Case("node/active-counts-as-available", Inventory(nodes=(AVAILABLE,)), Current(nodes=(IN_USE,))),
    Case(
        "node/failed-is-left-to-the-operator",
        Inventory(nodes=(AVAILABLE,)),
        Current(nodes=(CurrentNode("u-bm1", "bm1", NODE.fields(), "clean failed"),)),
        [("node", "bm1", "skip", {"reason": "clean failed, not moved to available"})],
    ),
    Case(
        "node/absent-pruned",
        Inventory(),
        Current(nodes=(HAVE_NODE,)),
        [("node", "bm1", "delete", {"uuid": "u-bm1"})],
        True,
    ),
    Case(
        "labels/set",
        Inventory(hosts=(HostLabels("c1", rack="r1", region="g1"),)),
        Current(labels={"c1": ("r0", "g1")}),
        [("host", "c1", "set_labels", {"host": "c1", "rack": "r1"})],
    ),
    Case(
        "labels/same", Inventory(hosts=(HostLabels("c1", rack="r1"),)), Current(labels={"c1": ("r1", None)})
    ),
    Case(
        "labels/unknown-host",
        Inventory(hosts=(HostLabels("nope", rack="r1"),)),
        Current(),
        [("host", "nope", "skip", {"reason": "no such host"})],
    ),
    Case(
        "labels/by-node-name",
        Inventory(hosts=(HostLabels("bm1", rack="r9"),)),
        Current(nodes=(HAVE_NODE,), labels={"u-bm1": ("r1", None)}),
        [("host", "bm1", "set_labels", {"host": "u-bm1", "rack": "r9"})],
    ),
    Case(
        "aggregate/new",
        Inventory(aggregates=(AggregateSpec("bm.small", STOCK, ("c1",)),)),
        Current(),
        [
            ("aggregate", "bm.small", "create", {}),
            ("aggregate", "bm.small", "set_metadata", {"metadata": STOCK}),
            ("aggregate", "bm.small", "add_host", {"host": "c1"}),
        ],
    ),
    Case(
        "aggregate/node-by-name",
        Inventory(aggregates=(AggregateSpec("bm.small", {}, ("bm1",)),)),
        Current(nodes=(HAVE_NODE,), aggregates=(CurrentAggregate("1", "bm.small", {}, ()),)),
        [("aggregate", "bm.small", "add_host", {"host": "u-bm1"})],
    ),
    Case(
        "aggregate/extra-host-and-key-kept",
        Inventory(aggregates=(AggregateSpec("a", {"k": "v"}, ("c1",)),)),
        Current(aggregates=(CurrentAggregate("1", "a", {"k": "v", "old": "x"}, ("c1", "c2")),)),
    ),
    Case(
        "aggregate/extra-host-and-key-pruned",
        Inventory(aggregates=(AggregateSpec("a", {"k": "v"}, ("c1",)),)),
        Current(aggregates=(CurrentAggregate("1", "a", {"k": "v", "old": "x"}, ("c1", "c2")),)),
        [
            ("aggregate", "a", "set_metadata", {"metadata": {"old": None}}),
            ("aggregate", "a", "remove_host", {"host": "c2"}),
        ],
        True,
    ),
    Case(
        "aggregate/absent-pruned",
        Inventory(),
        Current(aggregates=(CurrentAggregate("7", "old", {}, ("c1",)),)),
        [("aggregate", "old", "remove_host", {"host": "c1"}), ("aggregate", "old", "delete", {"id": "7"})],
        True,
    ),
    Case(
        "aggregate/private-stock-never-pruned",
        Inventory(aggregates=(AggregateSpec("bm.small", STOCK, ("c1", "c2")),)),
        Current(
            aggregates=(
                CurrentAggregate("1", "bm.small", STOCK, ("c2",)),
                CurrentAggregate("2", "bm.small.p1", PRIVATE, ("c1",)),
            )
        ),
        [("aggregate", "bm.small", "skip", {"host": "c1", "reason": "in bm.small.p1"})],
        True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_plan(case: Case) -> None:
    got = [(c.kind, c.name, c.op, dict(c.details)) for c in d.plan(case.inventory, case.current, case.prune)]
    assert got == case.expected


def _applied(inventory: Inventory, current: Current, prune: bool) -> Current:
    """A model of what applying the plan does, to check that a second plan is empty."""
    nodes = {n.name: n for n in current.nodes}
    labels = dict(current.labels)
    aggs = {a.name: a for a in current.aggregates}
    for c in d.plan(inventory, current, prune):
        det = dict(c.details)
        if c.kind == "node" and c.op in (d.CREATE, d.UPDATE):
            spec = next(n for n in inventory.nodes if n.name == c.name)
            state = nodes[c.name].provision_state if c.name in nodes else "enroll"
            nodes[c.name] = CurrentNode(f"u-{c.name}", c.name, spec.fields(), state)
        elif c.op == d.PROVISION:
            nodes[c.name] = CurrentNode(nodes[c.name].uuid, c.name, nodes[c.name].fields, det["target"])
        elif c.kind == "node" and c.op == d.DELETE:
            del nodes[c.name]
        elif c.op == d.SET_LABELS:
            rack, region = labels.get(det["host"], (None, None))
            labels[det["host"]] = (det.get("rack", rack), det.get("region", region))
        elif c.kind == "aggregate":
            a = aggs.get(c.name) or CurrentAggregate("n", c.name, {}, ())
            if c.op == d.SET_METADATA:
                md = {**a.metadata, **{k: v for k, v in det["metadata"].items() if v is not None}}
                md = {k: v for k, v in md.items() if det["metadata"].get(k, "") is not None}
                a = CurrentAggregate(a.id, a.name, md, a.hosts)
            elif c.op == d.ADD_HOST:
                a = CurrentAggregate(a.id, a.name, a.metadata, (*a.hosts, det["host"]))
            elif c.op == d.REMOVE_HOST:
                a = CurrentAggregate(a.id, a.name, a.metadata, tuple(h for h in a.hosts if h != det["host"]))
            if c.op == d.DELETE:
                aggs.pop(c.name)
            else:
                aggs[c.name] = a
    return Current(tuple(nodes.values()), labels, tuple(aggs.values()))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_second_plan_has_nothing_to_do(case: Case) -> None:
    after = _applied(case.inventory, case.current, case.prune)
    assert [c for c in d.plan(case.inventory, after, case.prune) if c.op != d.SKIP] == []


def test_parse_reads_the_documented_shape() -> None:
    inventory = parse(
        {
            "nodes": [
                {
                    "name": "bm1",
                    "driver": "redfish",
                    "resource_class": "baremetal.small",
                    "properties": {"rack": "r1"},
                }
            ],
            "hosts": [{"name": "c1", "rack": "r1", "region": "g"}],
            "aggregates": [{"name": "a", "availability_zone": "az1", "metadata": {"x": 1}, "hosts": ["bm1"]}],
        }
    )
    assert inventory.nodes[0].resource_class == "baremetal.small"
    assert inventory.hosts[0] == HostLabels("c1", "r1", "g")
    assert inventory.aggregates[0] == AggregateSpec("a", {"x": "1", "availability_zone": "az1"}, ("bm1",))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"servers": []}, "unknown sections"),
        ({"nodes": [{"name": "n"}]}, "driver is required"),
        ({"nodes": [{"driver": "fake"}]}, "needs a name"),
        (
            {"nodes": [{"name": "n", "driver": "fake", "provision_state": "active"}]},
            "provision_state must be",
        ),
        ({"hosts": [{"name": "c1", "row": "x"}]}, "unknown keys"),
        ({"aggregates": [{"name": "a"}, {"name": "a"}]}, "a appears twice"),
        ({"aggregates": [{"name": "a", "hosts": "c1"}]}, "expected a list"),
    ],
)
def test_parse_rejects(data: Any, message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        parse(data)
