"""The conductor-facing API (/internal/v1/conductors): registration, ownership by rendezvous
hashing over live conductors, host heartbeats of owned nodes, power-state reports."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
from sqlalchemy import select, update

from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.baremetal import hosts, ownership
from kumo.baremetal.models import Conductor, Node
from kumo.compute.models import ComputeHost
from kumo.db import Database, utcnow
from tests.conftest import Cloud


def agent_client(cloud: Cloud, token: str | None = None) -> httpx.Client:
    secret = cloud.settings.secret("agent_token") if token is None else token
    return httpx.Client(base_url=cloud.url, headers={AGENT_TOKEN_HEADER: secret}, timeout=30)


def enroll(cloud: Cloud, count: int, state: str = "available") -> list[str]:
    db = Database(cloud.settings.resolved_database_url)
    uuids = []
    with db.transaction() as session:
        for i in range(count):
            node = Node(
                uuid=str(uuid.uuid4()),
                name=f"n{i}",
                driver="fake-hardware",
                driver_info={"secret": f"s{i}"},
                properties={"cpus": 4, "memory_mb": 8192, "local_gb": 100},
                resource_class="bm.small",
                provision_state=state,
                power_state="power off",
            )
            session.add(node)
            session.flush()
            hosts.ensure_host(session, node)
            uuids.append(node.uuid)
    db.dispose()
    return uuids


def test_needs_the_agent_token(cloud: Cloud) -> None:
    with agent_client(cloud, token="wrong") as c:
        resp = c.put("/internal/v1/conductors/c1", json={})
    assert resp.status_code == 401


def test_one_conductor_owns_every_node_and_keeps_their_hosts_up(cloud: Cloud) -> None:
    nodes = enroll(cloud, 5)
    with agent_client(cloud) as c:
        resp = c.put("/internal/v1/conductors/c1", json={})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["conductors"] == ["c1"]
    assert sorted(n["uuid"] for n in body["nodes"]) == sorted(nodes)
    first = body["nodes"][0]
    assert set(first) == {
        "uuid",
        "name",
        "driver",
        "driver_info",
        "power_state",
        "provision_state",
        "maintenance",
        "instance_uuid",
    }
    assert first["driver"] == "fake-hardware" and first["driver_info"]["secret"].startswith("s")
    db = Database(cloud.settings.resolved_database_url)
    with db.read() as session:
        beats = session.scalars(select(ComputeHost.last_heartbeat).where(ComputeHost.name.in_(nodes))).all()
    db.dispose()
    assert len(beats) == 5 and all(b is not None for b in beats)


def test_ownership_splits_and_moves_when_a_conductor_dies(cloud: Cloud) -> None:
    nodes = enroll(cloud, 40)
    with agent_client(cloud) as c:
        c.put("/internal/v1/conductors/c1", json={}).raise_for_status()
        c.put("/internal/v1/conductors/c2", json={}).raise_for_status()
        one = c.put("/internal/v1/conductors/c1", json={}).json()
        two = c.put("/internal/v1/conductors/c2", json={}).json()
    assert one["conductors"] == ["c1", "c2"]
    mine1 = {n["uuid"] for n in one["nodes"]}
    mine2 = {n["uuid"] for n in two["nodes"]}
    assert mine1 | mine2 == set(nodes) and not mine1 & mine2
    assert mine1 == set(ownership.owned_by("c1", nodes, ["c1", "c2"]))
    # c2 stops heartbeating: past the timeout its nodes are c1's.
    db = Database(cloud.settings.resolved_database_url)
    stale = utcnow() - dt.timedelta(seconds=cloud.settings.heartbeat_timeout_seconds + 5)
    with db.transaction() as session:
        session.execute(update(Conductor).where(Conductor.name == "c2").values(last_heartbeat=stale))
    db.dispose()
    with agent_client(cloud) as c:
        again = c.put("/internal/v1/conductors/c1", json={}).json()
    assert again["conductors"] == ["c1"]
    assert {n["uuid"] for n in again["nodes"]} == set(nodes)


def test_power_state_reports(cloud: Cloud) -> None:
    on, off, gone = enroll(cloud, 3)
    with agent_client(cloud) as c:
        c.put("/internal/v1/conductors/c1", json={}).raise_for_status()
        for _ in range(3):
            resp = c.put(
                "/internal/v1/conductors/c1/power-states",
                json={"nodes": {on: "power on", off: "power off", gone: None}},
            )
            assert resp.status_code == 204, resp.text
        bad = c.put("/internal/v1/conductors/c1/power-states", json={"nodes": {on: "sideways"}})
    assert bad.status_code == 400
    db = Database(cloud.settings.resolved_database_url)
    with db.read() as session:
        by_uuid = {n.uuid: n for n in session.scalars(select(Node))}
    assert by_uuid[on].power_state == "power on"
    assert by_uuid[off].power_state == "power off"
    # Three passes without an answer: maintenance with Ironic's fault.
    assert by_uuid[gone].maintenance and by_uuid[gone].fault == "power failure"
    with agent_client(cloud) as c:
        c.put(
            "/internal/v1/conductors/c1/power-states", json={"nodes": {gone: "power on"}}
        ).raise_for_status()
    with db.read() as session:
        back = session.scalar(select(Node).where(Node.uuid == gone))
    db.dispose()
    assert back is not None and not back.maintenance and back.fault is None and back.power_state == "power on"


def test_heartbeat_on_postgresql(pg_cloud: Cloud) -> None:
    nodes = enroll(pg_cloud, 3)
    with agent_client(pg_cloud) as c:
        for name in ("c1", "c2", "c1"):
            resp = c.put(f"/internal/v1/conductors/{name}", json={})
            assert resp.status_code == 200, resp.text
        two = c.put("/internal/v1/conductors/c2", json={}).json()
    assert two["conductors"] == ["c1", "c2"]
    assert {n["uuid"] for n in two["nodes"]} == set(ownership.owned_by("c2", nodes, ["c1", "c2"]))


def test_unverified_nodes_are_not_synced(cloud: Cloud) -> None:
    (fresh,) = enroll(cloud, 1, state="enroll")
    with agent_client(cloud) as c:
        c.put("/internal/v1/conductors/c1", json={}).raise_for_status()
        for _ in range(3):
            c.put("/internal/v1/conductors/c1/power-states", json={"nodes": {fresh: None}}).raise_for_status()
    db = Database(cloud.settings.resolved_database_url)
    with db.read() as session:
        node = session.scalar(select(Node).where(Node.uuid == fresh))
    db.dispose()
    assert node is not None and not node.maintenance and node.power_sync_failures == 0
