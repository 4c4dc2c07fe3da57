"""Read the cloud's current state and apply a plan, through the public APIs only (compute:
os-aggregates and os-kumo-host-labels; baremetal: /v1/nodes, paths relative to the discovered endpoint), as an operator's CD job would."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kumo.apiclient import APIError, Client
from kumo.inventory.diff import (
    ADD_HOST,
    CREATE,
    DELETE,
    REMOVE_HOST,
    SET_LABELS,
    SET_METADATA,
    SKIP,
    UPDATE,
    Change,
)
from kumo.inventory.model import NODE_FIELDS, Current, CurrentAggregate, CurrentNode

IRONIC = {"X-OpenStack-Ironic-API-Version": "1.65"}


def read_current(client: Client, with_nodes: bool) -> Current:
    nodes: list[CurrentNode] = []
    if with_nodes:
        body = client.call("baremetal", "GET", "/nodes/detail", headers=IRONIC)
        for node in body["nodes"]:
            fields = {k: node.get(k) for k in NODE_FIELDS}
            nodes.append(CurrentNode(node["uuid"], node.get("name") or node["uuid"], fields))
    labels = {
        row["host"]: (row["rack"], row["region"])
        for row in client.call("compute", "GET", "/os-kumo-host-labels")["host_labels"]
    }
    aggregates = tuple(
        CurrentAggregate(str(a["id"]), a["name"], dict(a.get("metadata") or {}), tuple(a.get("hosts") or ()))
        for a in client.call("compute", "GET", "/os-aggregates")["aggregates"]
    )
    return Current(tuple(nodes), labels, aggregates)


def _patch(details: dict[str, Any]) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    for key, value in details.items():
        if key == "uuid":
            continue
        if isinstance(value, dict):
            ops.extend({"op": "add", "path": f"/{key}/{k}", "value": v} for k, v in value.items())
        else:
            ops.append({"op": "add", "path": f"/{key}", "value": value})
    return ops


def apply(
    client: Client, changes: Sequence[Change], current: Current, echo: Callable[[str], None] = print
) -> int:
    """Run the changes in order; returns how many were applied (skips are not)."""
    node_uuid = {n.name: n.uuid for n in current.nodes}
    aggregate_id = {a.name: a.id for a in current.aggregates}
    applied = 0
    for change in changes:
        details = dict(change.details)
        if change.op == SKIP:
            continue
        if change.kind == "node":
            if change.op == CREATE:
                body = {"name": change.name, **{k: v for k, v in details.items() if v is not None}}
                node = client.call("baremetal", "POST", "/nodes", body, headers=IRONIC)
                node_uuid[change.name] = node["uuid"]
            elif change.op == UPDATE:
                client.call(
                    "baremetal", "PATCH", f"/nodes/{details['uuid']}", _patch(details), headers=IRONIC
                )
            elif change.op == DELETE:
                client.call("baremetal", "DELETE", f"/nodes/{details['uuid']}", headers=IRONIC)
        elif change.kind == "host" and change.op == SET_LABELS:
            host = node_uuid.get(change.name, details.pop("host"))
            details.pop("host", None)
            client.call("compute", "PUT", f"/os-kumo-host-labels/{host}", {"labels": details})
        elif change.kind == "aggregate":
            _apply_aggregate(client, change, details, node_uuid, aggregate_id)
        applied += 1
        echo(f"applied: {change.describe()}")
    return applied


def _apply_aggregate(
    client: Client,
    change: Change,
    details: dict[str, Any],
    node_uuid: dict[str, str],
    aggregate_id: dict[str, str],
) -> None:
    if change.op == CREATE:
        created = client.call("compute", "POST", "/os-aggregates", {"aggregate": {"name": change.name}})
        aggregate_id[change.name] = str(created["aggregate"]["id"])
        return
    agg = aggregate_id[change.name]
    action = f"/os-aggregates/{agg}/action"
    if change.op == SET_METADATA:
        client.call("compute", "POST", action, {"set_metadata": {"metadata": details["metadata"]}})
    elif change.op in (ADD_HOST, REMOVE_HOST):
        host = node_uuid.get(details["host"], details["host"])
        try:
            client.call("compute", "POST", action, {change.op: {"host": host}})
        except APIError as exc:
            # Already there / already gone (a concurrent apply): the goal is reached either way.
            if exc.status not in (404, 409):
                raise
    elif change.op == DELETE:
        client.call("compute", "DELETE", f"/os-aggregates/{agg}")
