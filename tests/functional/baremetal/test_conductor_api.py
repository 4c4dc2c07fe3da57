"""The conductor-facing API (/internal/v1/conductors): registration, ownership by rendezvous
hashing over live conductors, host heartbeats of owned nodes, power-state reports."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from sqlalchemy import delete, select, update

from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.baremetal import assignments, hosts, ownership
from kumo.baremetal.models import Conductor, Node
from kumo.compute import hosts as hosts_mod
from kumo.compute.models import ComputeHost
from kumo.db import Database, utcnow
from tests.conftest import Cloud


def agent_client(cloud: Cloud, token: str | None = None) -> httpx.Client:
    secret = cloud.settings.secret("agent_token") if token is None else token
    return httpx.Client(base_url=cloud.url, headers={AGENT_TOKEN_HEADER: secret}, timeout=30)


def enroll(cloud: Cloud, count: int, state: str = "available", prefix: str = "n") -> list[str]:
    db = Database(cloud.settings.resolved_database_url)
    uuids = []
    with db.transaction() as session:
        for i in range(count):
            node = Node(
                uuid=str(uuid.uuid4()),
                name=f"{prefix}{i}",
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


# -- the assignment's version: a heartbeat where nothing changed carries no node ----------------


def beat(c: httpx.Client, name: str, held: str | None = None) -> dict[str, Any]:
    resp = c.put(f"/internal/v1/conductors/{name}", json={"assignment": held} if held else {})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def age(cloud: Cloud, *, hosts_by: float = 0.0, conductors: dict[str, float] | None = None) -> None:
    """Move heartbeats back in time: every host's by `hosts_by` seconds, conductors' by theirs."""
    db = Database(cloud.settings.resolved_database_url)
    with db.transaction() as session:
        if hosts_by:
            for host in session.scalars(select(ComputeHost)):
                if host.last_heartbeat is not None:
                    host.last_heartbeat -= dt.timedelta(seconds=hosts_by)
        for name, seconds in (conductors or {}).items():
            row = session.get(Conductor, name)
            assert row is not None
            row.last_heartbeat -= dt.timedelta(seconds=seconds)
    db.dispose()


def host_beats(cloud: Cloud, names: list[str]) -> dict[str, dt.datetime | None]:
    db = Database(cloud.settings.resolved_database_url)
    with db.read() as session:
        rows = session.execute(
            select(ComputeHost.name, ComputeHost.last_heartbeat).where(ComputeHost.name.in_(names))
        )
        found = {name: beat for name, beat in rows}
    db.dispose()
    return found


def test_a_heartbeat_holding_the_current_assignment_is_answered_unchanged_without_nodes(cloud: Cloud) -> None:
    nodes = enroll(cloud, 5)
    with agent_client(cloud) as c:
        first = beat(c, "c1")
        again = beat(c, "c1", first["assignment"])
        wrong = beat(c, "c1", "not-a-version")
        restarted = beat(c, "c1")  # a conductor that starts holds nothing: the whole list
    assert first["unchanged"] is False and len(first["nodes"]) == 5 and first["assignment"]
    assert again == {
        "conductors": ["c1"],
        "assignment": first["assignment"],
        "unchanged": True,
        "nodes": None,
    }
    assert wrong["unchanged"] is False and {n["uuid"] for n in wrong["nodes"]} == set(nodes)
    assert restarted["nodes"] == first["nodes"] and restarted["assignment"] == first["assignment"]


def test_the_version_is_the_same_in_every_api_process(cloud: Cloud) -> None:
    enroll(cloud, 4)
    with agent_client(cloud) as c:
        first = beat(c, "c1")
        assignments.forget()  # as a restarted (or another) API worker
        again = beat(c, "c1", first["assignment"])
    assert again["unchanged"] is True and again["nodes"] is None


def test_what_a_conductor_acts_on_changes_the_version_and_nothing_else_does(cloud: Cloud) -> None:
    nodes = enroll(cloud, 4)
    db = Database(cloud.settings.resolved_database_url)
    with agent_client(cloud) as c:
        held = beat(c, "c1")["assignment"]
        # Power and provision state: the conductor does not act on them (tasks carry them).
        with db.transaction() as session:
            session.execute(update(Node).values(power_state="power on", provision_state="manageable"))
        assert beat(c, "c1", held)["unchanged"] is True
        # driver_info: the conductor needs it for the BMC.
        with db.transaction() as session:
            node = session.scalar(select(Node).where(Node.uuid == nodes[0]))
            assert node is not None
            node.driver_info = {"secret": "new"}
        changed = beat(c, "c1", held)
        assert changed["unchanged"] is False and changed["assignment"] != held
        sent = {n["uuid"]: n for n in changed["nodes"]}
        assert sent[nodes[0]]["driver_info"] == {"secret": "new"} and len(sent) == 4
        held = changed["assignment"]
        assert beat(c, "c1", held)["unchanged"] is True
        # A node enrolled, then one deleted: each changes the assignment.
        (extra,) = enroll(cloud, 1, prefix="extra")
        grown = beat(c, "c1", held)
        assert {n["uuid"] for n in grown["nodes"]} == {*nodes, extra}
        with db.transaction() as session:
            session.execute(delete(Node).where(Node.uuid == nodes[1]))
        shrunk = beat(c, "c1", grown["assignment"])
        assert {n["uuid"] for n in shrunk["nodes"]} == {*nodes, extra} - {nodes[1]}
    db.dispose()


def test_a_dead_conductors_nodes_move_to_one_holding_its_current_version(cloud: Cloud) -> None:
    nodes = enroll(cloud, 30)
    with agent_client(cloud) as c:
        beat(c, "c1")
        beat(c, "c2")
        one, two = beat(c, "c1"), beat(c, "c2")
        assert one["conductors"] == ["c1", "c2"] and 0 < len(one["nodes"]) < 30
        assert beat(c, "c1", one["assignment"])["unchanged"] is True
        age(cloud, conductors={"c2": cloud.settings.heartbeat_timeout_seconds + 5})
        alone = beat(c, "c1", one["assignment"])
        assert alone["conductors"] == ["c1"] and alone["unchanged"] is False
        assert {n["uuid"] for n in alone["nodes"]} == set(nodes)
        # c2 comes back: it takes its nodes again, and c1 learns it lost them.
        back = beat(c, "c2", two["assignment"])
        assert back["unchanged"] is True  # the same nodes as before it died
        shared = beat(c, "c1", alone["assignment"])
        assert {n["uuid"] for n in shared["nodes"]} == {n["uuid"] for n in one["nodes"]}


def test_hosts_stay_up_while_a_conductor_lives_whoever_owned_them(cloud: Cloud) -> None:
    timeout = cloud.settings.heartbeat_timeout_seconds
    nodes = enroll(cloud, 20)
    with agent_client(cloud) as c:
        beat(c, "c1")
        two = beat(c, "c2")
        mine2 = [n["uuid"] for n in two["nodes"]]
        assert mine2
        # c2 dies; the hosts' heartbeats are old (but not yet stale). c1's next heartbeat
        # writes every node's host, c2's too.
        age(cloud, hosts_by=timeout / 2, conductors={"c2": timeout + 5})
        before = utcnow()
        beat(c, "c1")
    beats = host_beats(cloud, nodes)
    assert all(b is not None and before - dt.timedelta(seconds=1) <= b <= utcnow() for b in beats.values())
    db = Database(cloud.settings.resolved_database_url)
    with db.read() as session:
        up = [hosts_mod.is_up(h, timeout=timeout) for h in session.scalars(select(ComputeHost))]
    db.dispose()
    assert len(up) == 20 and all(up)


def test_hosts_are_written_only_when_due_and_go_down_without_conductors(cloud: Cloud) -> None:
    timeout = cloud.settings.heartbeat_timeout_seconds
    nodes = enroll(cloud, 3)
    with agent_client(cloud) as c:
        first = beat(c, "c1")
        written = host_beats(cloud, nodes)
        # Not due (a quarter of the timeout has not passed): the next heartbeat writes no host.
        beat(c, "c1", first["assignment"])
        assert host_beats(cloud, nodes) == written
        # A node enrolled: its host is up from the next heartbeat on, as before.
        (extra,) = enroll(cloud, 1, prefix="extra")
        beat(c, "c1", first["assignment"])
        assert host_beats(cloud, [extra])[extra] is not None
    # No conductor heartbeats for a whole timeout: every host is down.
    age(cloud, hosts_by=timeout + 1, conductors={"c1": timeout + 1})
    db = Database(cloud.settings.resolved_database_url)
    with db.read() as session:
        assert not any(hosts_mod.is_up(h, timeout=timeout) for h in session.scalars(select(ComputeHost)))
    db.dispose()


def test_the_version_on_postgresql(pg_cloud: Cloud) -> None:
    nodes = enroll(pg_cloud, 6)
    with agent_client(pg_cloud) as c:
        first = beat(c, "c1")
        assert beat(c, "c1", first["assignment"])["unchanged"] is True
        beat(c, "c2")
        split = beat(c, "c1", first["assignment"])
    assert split["conductors"] == ["c1", "c2"] and split["unchanged"] is False
    assert {n["uuid"] for n in split["nodes"]} == set(ownership.owned_by("c1", nodes, ["c1", "c2"]))
    beats = host_beats(pg_cloud, nodes)
    assert all(b is not None for b in beats.values())
