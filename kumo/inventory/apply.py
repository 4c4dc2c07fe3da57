"""Read the cloud's current state and apply a plan, through the public APIs only, as an
operator's CD job would: compute (os-aggregates, os-kumo-host-labels) and baremetal (/v1/nodes;
paths are relative to the endpoint openstacksdk discovers)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from kumo.apiclient import APIError, Client
from kumo.inventory.diff import (
    ADD_HOST,
    CREATE,
    DELETE,
    PROVISION,
    REMOVE_HOST,
    SET_LABELS,
    SET_METADATA,
    SKIP,
    UPDATE,
    Change,
)
from kumo.inventory.model import NODE_FIELDS, Current, CurrentAggregate, CurrentNode

IRONIC = {"X-OpenStack-Ironic-API-Version": "1.65"}
STEP_RESULT = {"manage": "manageable", "provide": "available"}
TRANSIENT = {"enroll", "verifying", "manageable", "cleaning"}  # on the way, as seen from a step


def read_current(client: Client, with_nodes: bool) -> Current:
    nodes: list[CurrentNode] = []
    if with_nodes:
        body = client.call("baremetal", "GET", "/nodes/detail", headers=IRONIC)
        for node in body["nodes"]:
            fields = {k: node.get(k) for k in NODE_FIELDS}
            name = node.get("name") or node["uuid"]
            nodes.append(CurrentNode(node["uuid"], name, fields, node.get("provision_state") or "enroll"))
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


def _provision(client: Client, uuid: str, steps: list[str], wait: float) -> None:
    """Run Ironic verbs one after the other, each awaited until the node leaves the transient
    state its conductor works in (verifying, cleaning)."""
    for step in steps:
        client.call("baremetal", "PUT", f"/nodes/{uuid}/states/provision", {"target": step}, headers=IRONIC)
        expected = STEP_RESULT[step]
        deadline = time.monotonic() + wait
        while True:
            node = client.call("baremetal", "GET", f"/nodes/{uuid}", headers=IRONIC)
            state = node.get("provision_state")
            if state == expected:
                break
            if state not in TRANSIENT or time.monotonic() > deadline:
                error = node.get("last_error") or f"still {state} after {wait:.0f}s"
                raise APIError(409, f"node {uuid}: {step} ended in {state}: {error}")
            time.sleep(0.2)


def apply(
    client: Client,
    changes: Sequence[Change],
    current: Current,
    echo: Callable[[str], None] = print,
    wait: float = 300.0,
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
            elif change.op == PROVISION:
                _provision(client, node_uuid[change.name], str(details["steps"]).split("+"), wait)
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
