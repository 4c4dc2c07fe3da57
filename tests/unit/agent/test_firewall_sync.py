"""A compute host's `firewall_sync` (kumo/agent/firewall_sync.py) over a recording firewall: the
whole state is applied, ports no longer listed go unless their tap still exists here, a guest's
ports are pinned (read by id) before it is built or received and unpinned once it is gone, and
the agent's guarded handlers put the rules in place before the driver runs."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from kumo.agent.agent import GUARDED_STARTS, GUEST_GONE, Agent, guarded, run_task
from kumo.agent.drivers.base import DriverError
from kumo.agent.drivers.fake import FakeDriver
from kumo.agent.firewall_sync import RETRY_FIRST, RETRY_MAX, FirewallSync
from kumo.agent.network.run import NetworkError
from kumo.agent.network.spec import PortFirewall, port_firewall_from_json
from kumo.agent.protocol import TaskOut, TaskResult
from kumo.work.kinds import MOVES, ActionPayload, InterfacePayload, PrecachePayload, SpawnPayload, TaskKind

A, B, C = "aaaaaaaa-1111-4111-8111-111111111111", "bbbbbbbb-2222-4222-8222-222222222222", "cccccccc-3333"


class RecordingFirewall:
    """The Firewall protocol in memory: what a host's iptables would hold, by tap."""

    name = "recording"

    def __init__(self) -> None:
        self.ports: dict[str, PortFirewall] = {}

    def apply(self, ports: Sequence[PortFirewall]) -> None:
        for p in ports:
            if p.port_security_enabled:
                self.ports[p.tap] = p
            else:
                self.ports.pop(p.tap, None)

    def remove(self, taps: Sequence[str]) -> None:
        for tap in taps:
            self.ports.pop(tap, None)

    def taps(self) -> set[str]:
        return set(self.ports)

    def teardown(self) -> None:
        self.ports.clear()


def port(port_id: str, ip: str, *rules: Mapping[str, Any], secured: bool = True) -> dict[str, Any]:
    return {
        "id": port_id,
        "mac_address": "fa:16:3e:00:00:01",
        "fixed_ips": [{"ip_address": ip}],
        "port_security_enabled": secured,
        "tap": "tap" + port_id[:11],
        "rules": list(rules),
    }


class Api:
    """The API's side: the host's bound ports, and any port by id."""

    def __init__(self) -> None:
        self.bound: list[dict[str, Any]] = []
        self.others: dict[str, dict[str, Any]] = {}
        self.generation = 1
        self.asked: list[list[str]] = []

    def read(self, port_ids: Collection[str]) -> Mapping[str, Any]:
        self.asked.append(sorted(port_ids))
        named = [self.others[pid] for pid in port_ids if pid in self.others]
        return {"host": "hv", "generation": self.generation, "ports": self.bound + named}


@pytest.fixture
def api() -> Api:
    return Api()


def test_converge_applies_the_whole_state_and_removes_what_left_unless_its_tap_is_here(api: Api) -> None:
    fw = RecordingFirewall()
    present: set[str] = set()
    sync = FirewallSync(fw, api.read, exists=lambda tap: tap in present)
    api.bound = [port(A, "10.0.0.5", {"direction": "ingress", "protocol": "6", "port_range_min": 22})]
    api.bound.append(port(B, "10.0.0.6"))
    assert sync.converge() == 1
    assert fw.taps() == {"tap" + A[:11], "tap" + B[:11]}
    (rule,) = fw.ports["tap" + A[:11]].rules
    assert (rule.direction, rule.protocol, rule.port_range_min) == ("ingress", "6", 22)

    api.generation, api.bound = 2, [port(A, "10.0.0.5"), port(B, "10.0.0.6", secured=False)]
    assert sync.converge() == 2
    assert fw.ports["tap" + A[:11]].rules == ()  # the rule went, live
    assert fw.taps() == {"tap" + A[:11]}  # port security off: no filtering

    present.add("tap" + A[:11])  # the guest is still here (moving away) ...
    api.bound = []
    sync.converge()
    assert fw.taps() == {"tap" + A[:11]}  # ... so its rules stay
    present.clear()
    sync.converge()
    assert fw.taps() == set()


def test_a_guest_is_pinned_before_it_starts_and_unpinned_once_gone(api: Api) -> None:
    fw = RecordingFirewall()
    sync = FirewallSync(fw, api.read, exists=lambda tap: False)
    api.others[A] = port(A, "10.0.0.5")  # bound to another host (a migration's source) yet
    instance = {"uuid": C, "ports": [{"id": A}]}
    sync.before_start(instance)
    assert api.asked[-1] == [A] and fw.taps() == {"tap" + A[:11]}
    sync.converge()  # a sync meanwhile keeps it
    assert fw.taps() == {"tap" + A[:11]}
    sync.after_gone(instance)
    assert api.asked[-1] == [] and fw.taps() == set()
    sync.before_start({"uuid": C, "ports": []})  # no ports: nothing to read
    assert len(api.asked) == 3


class OrderedDriver(FakeDriver):
    """A fake driver that records which taps had rules when it built a guest."""

    def __init__(self, fw: RecordingFirewall) -> None:
        super().__init__("hv")
        self.fw = fw
        self.rules_at_spawn: set[str] = set()

    def spawn(self, instance: dict[str, Any]) -> int:
        self.rules_at_spawn = self.fw.taps()
        return super().spawn(instance)


def test_the_guarded_spawn_has_its_rules_before_the_driver_builds_the_guest(api: Api) -> None:
    fw = RecordingFirewall()
    driver = OrderedDriver(fw)
    sync = FirewallSync(fw, api.read, exists=lambda tap: False)
    api.bound = [port(A, "10.0.0.5")]
    instance = {"uuid": C, "ports": [{"id": A}], "flavor": {}, "image_ref": "img"}
    roles = {kind: guarded(driver, sync, kind) for kind in GUARDED_STARTS | GUEST_GONE}
    task = TaskOut(
        id="t1",
        kind="spawn",
        instance_uuid=C,
        request_id=None,
        payload=SpawnPayload(None, instance).to_json(),
    )
    assert run_task(driver, task, roles).ok
    assert driver.rules_at_spawn == {"tap" + A[:11]}
    api.bound = []
    delete = ActionPayload(None, None, instance).to_json()
    assert run_task(
        driver, TaskOut(id="t2", kind="delete", instance_uuid=C, request_id=None, payload=delete), roles
    ).ok
    assert fw.taps() == set()
    assert MOVES <= GUEST_GONE and TaskKind.PREPARE_MIGRATION in GUARDED_STARTS
    # an attached NIC is filtered before its hot-plug; a detached one's rules go once it is out
    assert TaskKind.ATTACH_INTERFACE in GUARDED_STARTS and TaskKind.DETACH_INTERFACE in GUEST_GONE


def test_a_firewall_that_cannot_apply_fails_the_spawn(api: Api) -> None:
    class Broken(RecordingFirewall):
        def apply(self, ports: Sequence[PortFirewall]) -> None:
            raise NetworkError("iptables-restore: failed")

    driver = OrderedDriver(RecordingFirewall())
    sync = FirewallSync(Broken(), api.read, exists=lambda tap: False)
    instance = {"uuid": C, "ports": [{"id": A}], "flavor": {}, "image_ref": "img"}
    task = TaskOut(
        id="t1",
        kind="spawn",
        instance_uuid=C,
        request_id=None,
        payload=SpawnPayload(None, instance).to_json(),
    )
    result = run_task(driver, task, {TaskKind.SPAWN: guarded(driver, sync, TaskKind.SPAWN)})
    assert not result.ok and "iptables-restore" in (result.error or "")
    assert driver.power_states() == {}  # never built


def test_only_the_roles_own_work_runs_on_the_role_workers() -> None:
    """A network host that also enforces security groups: network_sync and firewall_sync run on
    the role workers, a guarded spawn stays on its instance's worker (in order with the
    instance's other tasks, and never in front of the network_sync its DHCP wait awaits)."""

    class Plane:
        read_state: object = None

        def sync(self, _payload: object) -> TaskResult:
            return TaskResult(ok=True)

    agent = Agent(
        "http://127.0.0.1:9",
        "hv-roles",
        FakeDriver("hv-roles"),
        "token",
        network=Plane(),  # type: ignore[arg-type]
        firewall=FirewallSync(RecordingFirewall(), exists=lambda tap: False),
    )

    def task(kind: TaskKind) -> TaskOut:
        return TaskOut(id=str(kind), kind=str(kind), instance_uuid=C, request_id=None, payload={})

    assert agent._is_role_task(task(TaskKind.NETWORK_SYNC))
    assert agent._is_role_task(task(TaskKind.FIREWALL_SYNC))
    for kind in (TaskKind.SPAWN, TaskKind.DELETE, TaskKind.STOP, TaskKind.ATTACH_INTERFACE):
        assert not agent._is_role_task(task(kind)), kind


def test_a_failed_converge_is_retried_with_a_doubling_backoff_until_one_succeeds(api: Api) -> None:
    class Flaky(RecordingFirewall):
        failing = True

        def apply(self, ports: Sequence[PortFirewall]) -> None:
            if self.failing:
                raise NetworkError("iptables-restore: Another app is currently holding the xtables lock")
            super().apply(ports)

    now = [100.0]
    fw = Flaky()
    sync = FirewallSync(fw, api.read, exists=lambda tap: False, clock=lambda: now[0])
    api.bound = [port(A, "10.0.0.5")]
    assert not sync.retry_due()  # nothing failed
    with pytest.raises(NetworkError):
        sync.converge()
    assert not sync.retry_due()
    now[0] += RETRY_FIRST
    assert sync.retry_due() and not sync.retry_due()  # once per backoff
    now[0] += RETRY_FIRST
    assert not sync.retry_due()  # the next one is twice as far
    now[0] += RETRY_FIRST
    assert sync.retry_due()
    now[0] += RETRY_MAX * 10
    assert sync.retry_due()
    fw.failing = False
    assert sync.converge() == 1 and fw.taps() == {"tap" + A[:11]}
    now[0] += RETRY_MAX * 10
    assert not sync.retry_due()  # it succeeded: nothing to retry
    fw.failing = True
    with pytest.raises(NetworkError):
        sync.converge()
    now[0] += RETRY_FIRST
    assert sync.retry_due()  # the backoff started over


def test_remove_all_tears_the_firewall_down() -> None:
    fw = RecordingFirewall()
    fw.apply([port_firewall_from_json(port(A, "10.0.0.5"))])
    FirewallSync(fw, exists=lambda tap: False).remove_all()
    assert fw.taps() == set()


def test_a_firewall_sync_runs_while_a_spawn_is_blocked_on_a_compute_only_host(api: Api) -> None:
    """A host that enforces security groups but serves no networks (most hypervisors): its
    firewall_sync runs on a role worker, not behind a spawn stuck on the instance's worker."""
    release = threading.Event()

    class Blocked(FakeDriver):
        def spawn(self, instance: dict[str, Any]) -> int:
            release.wait(10)
            return super().spawn(instance)

    fw = RecordingFirewall()
    sync = FirewallSync(fw, api.read, exists=lambda tap: False)
    agent = Agent("http://127.0.0.1:9", "hv-fw", Blocked("hv-fw"), "token", workers=1, firewall=sync)
    sync.read_state = api.read  # the API's side, in memory
    api.bound = [port(A, "10.0.0.5")]
    threads = [
        threading.Thread(target=agent._worker, args=(q,), daemon=True)
        for q in [*agent._queues, *agent._role_queues]
    ]
    for t in threads:
        t.start()
    try:
        instance = {"uuid": C, "ports": [], "flavor": {}, "image_ref": "img"}
        spawn = SpawnPayload(None, instance).to_json()
        agent._dispatch(TaskOut(id="s", kind="spawn", instance_uuid=C, request_id=None, payload=spawn))
        agent._dispatch(
            TaskOut(id="f", kind="firewall_sync", instance_uuid=None, request_id=None, payload={})
        )
        task, result = agent._results.get(timeout=5)
        assert task.id == "f" and result.ok and result.details == {"applied_generation": 1}
        assert fw.taps() == {"tap" + A[:11]}
    finally:
        release.set()
        agent.stop_event.set()
        for t in threads:
            t.join(5)


def test_a_precache_copy_never_holds_up_a_firewall_sync_or_a_spawn(api: Api, tmp_path: Path) -> None:
    """A libvirt host (it enforces security groups) copying an image for a precache job: the
    copy runs on a worker of its own, so the firewall_sync and the spawn behind it run now."""
    release = threading.Event()

    def slow_copy(_payload: object) -> TaskResult:
        release.wait(10)
        return TaskResult(ok=True, details={"state": "cached"})

    fw = RecordingFirewall()
    sync = FirewallSync(fw, api.read, exists=lambda tap: False)
    agent = Agent(
        "http://127.0.0.1:9",
        "hv-pc",
        FakeDriver("hv-pc"),
        "token",
        workers=1,
        firewall=sync,
        image_cache=tmp_path,
    )
    assert agent.peer is not None
    agent._roles[TaskKind.PRECACHE] = slow_copy
    sync.read_state = api.read
    api.bound = [port(A, "10.0.0.5")]
    threads = [
        threading.Thread(target=agent._worker, args=(q,), daemon=True)
        for q in [*agent._queues, *agent._role_queues, *agent._precache_queues]
    ]
    for t in threads:
        t.start()
    try:
        copy = PrecachePayload("job", B, [{"source": "origin"}], 0, 0).to_json()
        agent._dispatch(TaskOut(id="p", kind="precache", instance_uuid=None, request_id=None, payload=copy))
        instance = {"uuid": C, "ports": [], "flavor": {}, "image_ref": "img"}
        spawn = SpawnPayload(None, instance).to_json()
        agent._dispatch(TaskOut(id="s", kind="spawn", instance_uuid=C, request_id=None, payload=spawn))
        agent._dispatch(
            TaskOut(id="f", kind="firewall_sync", instance_uuid=None, request_id=None, payload={})
        )
        done = {task.id: result for task, result in (agent._results.get(timeout=5) for _ in range(2))}
        assert set(done) == {"s", "f"} and all(r.ok for r in done.values())
        release.set()
        task, result = agent._results.get(timeout=5)
        assert task.id == "p" and result.details == {"state": "cached"}
    finally:
        release.set()
        agent.stop()  # never started: returns at once, its peer endpoint closed
        for t in threads:
            t.join(5)


class FailingDriver(FakeDriver):
    def __init__(self, host: str, exists: bool = False, raises: bool = False) -> None:
        super().__init__(host)
        self.exists, self.raises = exists, raises

    def spawn(self, instance: dict[str, Any]) -> int:
        if self.raises:
            raise RuntimeError("libvirt went away")
        raise DriverError("no room for the disk")

    def attach_interface(self, instance: dict[str, Any], port: dict[str, Any]) -> None:
        raise DriverError("hot-plug refused")

    def power_states(self) -> dict[str, int]:
        return {C: 1} if self.exists else {}


@pytest.mark.parametrize("raises", [False, True])
def test_a_failed_guarded_start_unpins_its_ports_unless_the_guest_exists(api: Api, raises: bool) -> None:
    api.others[A] = port(A, "10.0.0.5")
    instance = {"uuid": C, "ports": [{"id": A}], "flavor": {}, "image_ref": "img"}
    task = TaskOut(
        id="t1",
        kind="spawn",
        instance_uuid=C,
        request_id=None,
        payload=SpawnPayload(None, instance).to_json(),
    )
    fw = RecordingFirewall()
    sync = FirewallSync(fw, api.read, exists=lambda tap: False)
    driver = FailingDriver("hv", raises=raises)
    result = run_task(driver, task, {TaskKind.SPAWN: guarded(driver, sync, TaskKind.SPAWN)})
    assert not result.ok
    assert api.asked[-1] == [] and fw.taps() == set()  # unpinned, its chain gone
    sync.converge()
    assert api.asked[-1] == []  # later converges no longer ask for the port
    # the guest exists here after all (a start that failed late): its rules stay
    sync2 = FirewallSync(fw, api.read, exists=lambda tap: False)
    driver2 = FailingDriver("hv", exists=True, raises=raises)
    assert not run_task(driver2, task, {TaskKind.SPAWN: guarded(driver2, sync2, TaskKind.SPAWN)}).ok
    sync2.converge()
    assert api.asked[-1] == [A] and fw.taps() == {"tap" + A[:11]}


def test_a_failed_attach_unpins_only_its_port(api: Api) -> None:
    api.others[A] = port(A, "10.0.0.5")
    api.others[B] = port(B, "10.0.0.6")
    fw = RecordingFirewall()
    sync = FirewallSync(fw, api.read, exists=lambda tap: False)
    sync.before_start({"uuid": C, "ports": [{"id": A}]})  # the guest was built with A
    instance = {"uuid": C, "ports": [{"id": A}, {"id": B}], "flavor": {}, "image_ref": "img"}
    payload = InterfacePayload(None, None, instance, {"id": B}).to_json()  # type: ignore[arg-type]
    task = TaskOut(id="t2", kind="attach_interface", instance_uuid=C, request_id=None, payload=payload)
    driver = FailingDriver("hv", exists=True)
    kind = TaskKind.ATTACH_INTERFACE
    assert not run_task(driver, task, {kind: guarded(driver, sync, kind)}).ok
    assert api.asked[-1] == [A] and fw.taps() == {"tap" + A[:11]}
