"""The conductor against a small in-memory API (httpx MockTransport speaking the contract of
docs/baremetal.md) and the fake driver: tasks run and reported, one node's tasks in order,
ownership followed at every heartbeat (a node that moves away mid-deploy is abandoned and its
new owner finishes it), errors as failed results, and the batched power sync."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from kumo.baremetal.conductor import Conductor
from kumo.baremetal.drivers import fake as fake_driver
from kumo.baremetal.drivers.base import POWER_OFF, POWER_ON, Hardware, Limiter, Node
from kumo.baremetal.drivers.load import load_hardware
from kumo.compute.states import PowerState


@dataclass
class FakeAPI:
    """The API side of the conductor protocol, in memory. `owner` decides who owns a node."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    power_reports: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    heartbeats: dict[str, int] = field(default_factory=dict)
    held: list[tuple[str, str | None]] = field(default_factory=list)  # (conductor, version it sent)
    unchanged: int = 0  # answers without a node list
    answer_override: dict[str, Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def version(nodes: list[dict[str, Any]]) -> str:
        """What the conductor acts on (uuid, name, driver, driver_info), hashed."""
        acted_on = sorted((n["uuid"], n["name"], n["driver"], n["driver_info"]) for n in nodes)
        return hashlib.sha256(json.dumps(acted_on, sort_keys=True).encode()).hexdigest()[:32]

    def add_node(self, owner: str, **driver_info: Any) -> str:
        node_uuid = str(uuid.uuid4())
        self.nodes[node_uuid] = {
            "uuid": node_uuid,
            "name": f"bm-{len(self.nodes)}",
            "driver": "fake-hardware",
            "driver_info": driver_info,
            "power_state": None,
            "provision_state": "available",
            "maintenance": False,
            "instance_uuid": None,
        }
        self.owner[node_uuid] = owner
        return node_uuid

    def add_task(self, node_uuid: str, kind: str, instance_uuid: str | None = None, **payload: Any) -> str:
        task_id = str(uuid.uuid4())
        with self.lock:
            self.pending.append(
                {
                    "id": task_id,
                    "kind": kind,
                    "host": node_uuid,
                    "instance_uuid": instance_uuid,
                    "payload": {"node": self.nodes[node_uuid], **payload},
                    "request_id": None,
                }
            )
        return task_id

    def result(self, task_id: str) -> dict[str, Any] | None:
        with self.lock:
            return next((r for r in self.results if r["task_id"] == task_id), None)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/internal/v1")
        body = json.loads(request.content or b"{}")
        parts = path.strip("/").split("/")
        if request.method == "PUT" and parts[0] == "conductors" and len(parts) == 2:
            name = parts[1]
            with self.lock:
                self.heartbeats[name] = self.heartbeats.get(name, 0) + 1
                mine = [n for u, n in self.nodes.items() if self.owner.get(u) == name]
                held = body.get("assignment")
                self.held.append((name, held))
                version = self.version(mine)
                live = sorted(set(self.owner.values()))
                if self.answer_override is not None:
                    return httpx.Response(200, json=self.answer_override)
                if held == version:
                    self.unchanged += 1
                    same = {"conductors": live, "assignment": version, "unchanged": True, "nodes": None}
                    return httpx.Response(200, json=same)
            return httpx.Response(200, json={"conductors": live, "assignment": version, "nodes": mine})
        if request.method == "PUT" and parts[-1] == "power-states":
            with self.lock:
                self.power_reports.append((parts[1], body["nodes"]))
            return httpx.Response(204)
        if path == "/tasks/poll":
            hosts, busy = set(body["hosts"]), set(body["busy"])
            deadline = time.monotonic() + min(body["wait"], 0.5)
            while True:
                with self.lock:
                    found = [t for t in self.pending if t["host"] in hosts and t["id"] not in busy]
                if found or time.monotonic() > deadline:
                    return httpx.Response(200, json={"tasks": found})
                time.sleep(0.02)
        if path == "/tasks/results":
            with self.lock:
                for r in body["results"]:
                    self.results.append(r)
                    self.pending = [t for t in self.pending if t["id"] != r["task_id"]]
            return httpx.Response(204)
        return httpx.Response(404)


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    fake_driver.forget_all()
    yield FakeAPI()
    fake_driver.forget_all()


@pytest.fixture
def conductors(api: FakeAPI) -> Iterator[Callable[..., Conductor]]:
    started: list[Conductor] = []

    def start(name: str, **options: Any) -> Conductor:
        opts = {"heartbeat_interval": 0.1, "poll_wait": 0.5, "power_sync_interval": 3600.0, **options}
        c = Conductor("http://api", name, "token", transport=httpx.MockTransport(api.handle), **opts).start()
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_spawn_is_a_deploy_and_reports_the_power_state(api: FakeAPI, conductors: Any) -> None:
    node = api.add_node("c1", fake_boot_seconds=0.1)
    task = api.add_task(node, "spawn", instance_uuid="inst-1", deploy_timeout=10)
    conductors("c1")
    result = wait_for(lambda: api.result(task))
    assert result["ok"] is True, result
    assert result["power_state"] == int(PowerState.RUNNING)
    assert result["details"] == {"power_state": POWER_ON}
    assert "KUMO-BOOT-OK" in fake_driver.machine(node).console_text()


def test_node_tasks(api: FakeAPI, conductors: Any) -> None:
    running = api.add_node("c1", fake_power_state=POWER_ON)
    off = api.add_node("c1")
    verify = api.add_task(off, "node_verify")
    adopt = api.add_task(running, "node_adopt")
    clean = api.add_task(off, "node_clean")
    conductors("c1")
    for task, state in ((verify, POWER_OFF), (adopt, POWER_ON), (clean, POWER_OFF)):
        result = wait_for(lambda t=task: api.result(t))
        assert (result["ok"], result["details"], result["power_state"]) == (
            True,
            {"power_state": state},
            None,
        )
    assert fake_driver.machine(running).power_ons == 0  # adoption never power-cycles
    assert fake_driver.machine(running).power_offs == 0


def test_one_nodes_tasks_run_in_order(api: FakeAPI, conductors: Any) -> None:
    node = api.add_node("c1", fake_latency=0.05)
    tasks = [api.add_task(node, "node_power", target=t) for t in (POWER_ON, POWER_OFF, POWER_ON, "rebooting")]
    conductors("c1")
    wait_for(lambda: all(api.result(t) for t in tasks))
    order = [r["task_id"] for r in api.results]
    assert order == tasks
    assert [r["details"]["power_state"] for r in api.results] == [POWER_ON, POWER_OFF, POWER_ON, POWER_ON]
    assert fake_driver.machine(node).power_ons == 3


def test_a_task_for_a_node_it_does_not_own_is_left_alone(api: FakeAPI, conductors: Any) -> None:
    theirs = api.add_node("c2")
    task = api.add_task(theirs, "node_power", target=POWER_ON)
    c1 = conductors("c1")
    assert theirs not in c1.nodes
    time.sleep(0.5)  # several polls and heartbeats
    assert api.result(task) is None
    assert fake_driver.machine(theirs, {}).power == POWER_OFF


def test_errors_are_failed_results(api: FakeAPI, conductors: Any) -> None:
    silent = api.add_node("c1", fake_boots=False)
    dead = api.add_node("c1", fake_unreachable=True)
    timeout = api.add_task(silent, "spawn", instance_uuid="i-1", deploy_timeout=0.3)
    unreachable = api.add_task(dead, "node_verify")
    conductors("c1")
    r1 = wait_for(lambda: api.result(timeout))
    r2 = wait_for(lambda: api.result(unreachable))
    assert r1["ok"] is False and "Timeout reached while waiting for the deploy" in r1["error"]
    assert fake_driver.machine(silent).power == POWER_OFF
    assert r2["ok"] is False and "unreachable" in r2["error"]


def test_a_node_that_moves_away_mid_deploy_is_finished_by_its_new_owner(
    api: FakeAPI, conductors: Any
) -> None:
    node = api.add_node("c1", fake_boots=False)
    task = api.add_task(node, "spawn", instance_uuid="i-1", deploy_timeout=60)
    c1 = conductors("c1")
    wait_for(lambda: fake_driver.machine(node).power == POWER_ON)  # c1 is waiting for the marker
    api.owner[node] = "c2"  # c1 is declared dead, or c2 joined and the hash moved the node
    wait_for(lambda: node not in c1.nodes)
    fake_driver.machine(node).boots = True  # this time the machine will come up
    conductors("c2")
    result = wait_for(lambda: api.result(task))
    assert result["ok"] is True
    assert len([r for r in api.results if r["task_id"] == task]) == 1  # c1 reported nothing
    assert fake_driver.machine(node).power_ons == 2  # c2 redeployed from the start


def test_new_nodes_are_picked_up_at_the_next_heartbeat(api: FakeAPI, conductors: Any) -> None:
    c1 = conductors("c1")
    assert c1.nodes == {}
    node = api.add_node("c1")
    task = api.add_task(node, "node_power", target=POWER_ON)
    assert wait_for(lambda: api.result(task))["ok"] is True


def test_power_sync_is_one_bounded_concurrent_pass(api: FakeAPI, conductors: Any) -> None:
    nodes = [api.add_node("c1", fake_latency=0.05) for _ in range(40)]
    fake_driver.machine(nodes[0], api.nodes[nodes[0]]["driver_info"]).power = POWER_ON
    fake_driver.machine(nodes[1], api.nodes[nodes[1]]["driver_info"]).unreachable = True
    c1 = conductors("c1", bmc_concurrency=10)
    sync = c1.sync_power_states()
    assert sync is not None
    assert 0.2 <= sync.seconds < 1.5  # 40 calls of 50 ms, 10 at a time (sequential: 2 s)
    assert len(api.power_reports) == 1
    name, states = api.power_reports[0]
    assert name == "c1" and len(states) == 40
    assert states[nodes[0]] == POWER_ON and states[nodes[1]] is None
    assert {states[n] for n in nodes[2:]} == {POWER_OFF}


def test_power_sync_leaves_out_nodes_a_task_is_working_on(api: FakeAPI, conductors: Any) -> None:
    busy = api.add_node("c1", fake_boots=False)
    idle = api.add_node("c1")
    api.add_task(busy, "spawn", instance_uuid="i-1", deploy_timeout=30)
    c1 = conductors("c1")
    wait_for(lambda: fake_driver.machine(busy).power == POWER_ON)  # deploying, waiting for the marker
    c1.sync_power_states()
    assert [states for _, states in api.power_reports] == [{idle: POWER_OFF}]


def test_power_sync_leaves_out_a_node_a_task_came_for_during_the_pass(api: FakeAPI, conductors: Any) -> None:
    """The pass read the node "on"; a tear-down (here a power off) came, ran and was reported
    while the pass went on: the pass's older reading must not overwrite the task's result."""
    slow = api.add_node("c1", fake_latency=1.5)  # the pass's read of it takes 1.5 s
    idle = api.add_node("c1")
    fake_driver.machine(slow, api.nodes[slow]["driver_info"]).power = POWER_ON
    c1 = conductors("c1")
    sync = threading.Thread(target=c1.sync_power_states)
    sync.start()
    task = api.add_task(slow, "node_power", target=POWER_OFF)
    assert wait_for(lambda: api.result(task))["details"] == {"power_state": POWER_OFF}
    sync.join()
    assert [states for _, states in api.power_reports] == [{idle: POWER_OFF}]


def test_a_driver_that_fails_to_load_fails_the_task_not_the_node(api: FakeAPI, conductors: Any) -> None:
    calls = {"n": 0}

    def flaky(node: Node, limiter: Limiter) -> Hardware:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ImportError("no module named sushy")
        return load_hardware(node, limiter)

    node = api.add_node("c1")
    first = api.add_task(node, "node_verify")
    second = api.add_task(node, "node_power", target=POWER_ON)
    conductors("c1", hardware_loader=flaky)
    r1, r2 = wait_for(lambda: api.result(first)), wait_for(lambda: api.result(second))
    assert r1["ok"] is False and "failed to load: ImportError: no module named sushy" in r1["error"]
    assert r2["ok"] is True and r2["details"] == {"power_state": POWER_ON}


def test_heartbeat_sends_the_version_held_and_keeps_its_nodes_while_unchanged(api: FakeAPI) -> None:
    a, b = api.add_node("c1"), api.add_node("c1")
    api.add_node("c2")
    transport = httpx.MockTransport(api.handle)
    conductor = Conductor("http://api", "c1", "token", transport=transport)
    try:
        conductor.heartbeat()
        assert api.held[-1] == ("c1", None) and set(conductor.nodes) == {a, b}
        assert conductor.assignment is not None and conductor.conductors == ["c1", "c2"]
        for _ in range(3):
            conductor.heartbeat()
        assert api.held[-1] == ("c1", conductor.assignment) and api.unchanged == 3
        assert set(conductor.nodes) == {a, b}
        # A node moves away (its owner died elsewhere, or one joined): the whole list again.
        api.owner[b] = "c2"
        conductor.heartbeat()
        assert set(conductor.nodes) == {a} and api.unchanged == 3
        # What the conductor drives a BMC with changes: the new driver_info arrives.
        api.nodes[a]["driver_info"] = {"fake_latency": 0.01}
        conductor.heartbeat()
        assert conductor.nodes[a].driver_info == {"fake_latency": 0.01}
        # An answer without a list that is not "unchanged" for what was sent: the nodes are kept
        # and the next heartbeat asks for the whole list.
        api.answer_override = {"conductors": ["c1"], "assignment": "other", "unchanged": True, "nodes": None}
        conductor.heartbeat()
        assert set(conductor.nodes) == {a} and conductor.assignment is None
        api.answer_override = None
        conductor.heartbeat()
        assert api.held[-1] == ("c1", None) and set(conductor.nodes) == {a}
    finally:
        conductor.stop()
    # A restarted conductor holds nothing: it sends no version and learns its whole assignment.
    again = Conductor("http://api", "c1", "token", transport=transport)
    try:
        again.heartbeat()
        assert api.held[-1] == ("c1", None) and set(again.nodes) == {a}
    finally:
        again.stop()


def test_an_api_without_versions_is_followed_at_every_heartbeat(api: FakeAPI) -> None:
    """Answers without `assignment` (an API before versions): the list is taken every time."""
    a = api.add_node("c1")
    conductor = Conductor("http://api", "c1", "token", transport=httpx.MockTransport(api.handle))
    try:
        api.answer_override = {"conductors": ["c1"], "nodes": [api.nodes[a]]}
        conductor.heartbeat()
        assert set(conductor.nodes) == {a} and conductor.assignment is None
        api.answer_override = {"conductors": ["c1"], "nodes": []}
        conductor.heartbeat()
        assert conductor.nodes == {} and api.held[-1] == ("c1", None)
    finally:
        conductor.stop()


def test_a_task_that_raises_outside_the_driver_fails_alone(api: FakeAPI, conductors: Any) -> None:
    """A task whose node cannot even be read (a row of another version) fails; the node's next
    task and the other nodes' tasks still run."""
    node, other = api.add_node("c1"), api.add_node("c1")
    broken = api.add_task(node, "node_power", target=POWER_ON)
    api.pending[-1]["payload"]["node"] = {**api.nodes[node], "driver_info": "not a mapping"}
    after = api.add_task(node, "node_power", target=POWER_ON)
    beside = api.add_task(other, "node_verify")
    conductors("c1")
    r1, r2, r3 = (wait_for(lambda t=t: api.result(t)) for t in (broken, after, beside))
    assert r1["ok"] is False and r1["error"].startswith("ValueError: ")
    assert "traceback" in r1["details"]
    assert r2["ok"] is True and r2["details"] == {"power_state": POWER_ON}
    assert r3["ok"] is True


def test_a_node_it_cannot_read_is_left_out_alone(api: FakeAPI, conductors: Any) -> None:
    """A heartbeat's answer with one node the conductor cannot read: it owns the others and
    keeps heartbeating."""
    good, bad = api.add_node("c1"), api.add_node("c1")
    api.nodes[bad]["driver_info"] = "not a mapping"
    c1 = conductors("c1")
    assert set(c1.nodes) == {good}
    beats = api.heartbeats["c1"]
    wait_for(lambda: api.heartbeats["c1"] > beats + 2)
    task = api.add_task(good, "node_power", target=POWER_ON)
    assert wait_for(lambda: api.result(task))["ok"] is True
