"""Security groups reach the compute hosts' firewalls (kumo/network/firewall.py) through the real
API, on SQLite and PostgreSQL: each change makes one `firewall_sync` pending on exactly the hosts
it affects, `GET /internal/v1/hosts/{host}/firewall` hands a host its ports with their rules
resolved, and an agent with a recording firewall applies every change live."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kumo.agent import service
from kumo.agent.agent import Agent
from kumo.agent.drivers.fake import FakeDriver
from kumo.agent.firewall_sync import FirewallSync
from kumo.agent.network.run import NetworkError
from kumo.agent.network.spec import PortFirewall
from kumo.agent.protocol import AGENT_TOKEN_HEADER, TaskResult
from kumo.network import firewall, ipam
from kumo.network.models import FirewallHost
from kumo.work.models import Task
from kumo.work.queue import host_key
from tests.conftest import Cloud, wait_for
from tests.functional.network.test_api import V2, created
from tests.functional.sdk.test_sdk import IMAGE_DATA, connect, wait_status
from tests.unit.agent.test_firewall_sync import RecordingFirewall


@pytest.fixture(params=["sqlite", "postgresql"])
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    cloud: Cloud = request.getfixturevalue("pg_cloud" if request.param == "postgresql" else "cloud")
    return cloud


def internal(cloud: Cloud) -> httpx.Client:
    return httpx.Client(
        base_url=f"{cloud.url}/internal/v1",
        headers={AGENT_TOKEN_HEADER: cloud.settings.secret("agent_token")},
        timeout=30,
    )


def pending(cloud: Cloud) -> list[str]:
    """The hosts with a pending firewall_sync, one entry per task."""
    with cloud.server.rt.db.read() as session:
        rows = session.scalars(select(Task.host).where(Task.kind == "firewall_sync", Task.state == "pending"))
        return sorted(rows)


def settle_all(cloud: Cloud, inside: httpx.Client) -> None:
    """What each host's agent does: read its state, report the generation it applied."""
    with cloud.server.rt.db.read() as session:
        tasks = [
            (t.id, t.host)
            for t in session.scalars(
                select(Task).where(Task.kind == "firewall_sync", Task.state == "pending")
            )
        ]
    results = []
    for task_id, host in tasks:
        generation = inside.get(f"/hosts/{host}/firewall").json()["generation"]
        results.append({"task_id": task_id, "ok": True, "details": {"applied_generation": generation}})
    if results:
        assert inside.post("/tasks/results", json={"results": results}).status_code == 204


def port(admin: httpx.Client, net: str, host: str = "", **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"network_id": net, **attrs}
    if host:
        body["binding:host_id"] = host
    return created(admin.post(f"{V2}/ports", json={"port": body}), "port")


def group(admin: httpx.Client, name: str) -> str:
    return str(
        created(
            admin.post(f"{V2}/security-groups", json={"security_group": {"name": name}}), "security_group"
        )["id"]
    )


def rule(admin: httpx.Client, group_id: str, **attrs: Any) -> str:
    body = {"security_group_rule": {"security_group_id": group_id, "direction": "ingress", **attrs}}
    return str(created(admin.post(f"{V2}/security-group-rules", json=body), "security_group_rule")["id"])


def test_each_change_syncs_exactly_the_hosts_it_affects(any_cloud: Cloud) -> None:
    cloud = any_cloud
    admin, inside = cloud.client(), internal(cloud)
    for host in ("hv-a", "hv-b", "hv-c"):
        assert inside.put(f"/firewall-hosts/{host}").status_code == 204
    assert pending(cloud) == ["hv-a", "hv-b", "hv-c"]  # registration: converge after a start
    assert inside.put("/firewall-hosts/hv-a").status_code == 204
    assert pending(cloud) == ["hv-a", "hv-b", "hv-c"]  # still one per host
    settle_all(cloud, inside)
    assert pending(cloud) == []

    net = created(admin.post(f"{V2}/networks", json={"network": {"name": "fw"}}), "network")["id"]
    created(
        admin.post(
            f"{V2}/subnets", json={"subnet": {"network_id": net, "cidr": "10.61.0.0/24", "ip_version": 4}}
        ),
        "subnet",
    )
    web, db = group(admin, "web"), group(admin, "db")
    p_web = port(admin, net, "hv-a", security_groups=[web])
    assert pending(cloud) == ["hv-a"]
    p_db = port(admin, net, "hv-b", security_groups=[db])
    p_fake = port(admin, net, "hv-fake", security_groups=[web])  # a host no firewall agent registered
    assert pending(cloud) == ["hv-a", "hv-b"]
    settle_all(cloud, inside)

    # A rule lands on the hosts with a port in its group only, and wakes their agents.
    waker = cloud.server.rt.waker
    seen = {host: waker.seq(host_key(host)) for host in ("hv-a", "hv-b")}
    ssh = rule(admin, web, protocol="tcp", port_range_min=22, port_range_max=22)
    assert pending(cloud) == ["hv-a"]
    assert waker.seq(host_key("hv-a")) > seen["hv-a"] and waker.seq(host_key("hv-b")) == seen["hv-b"]
    settle_all(cloud, inside)
    # db admits web's members: db's host now depends on web's membership.
    rule(admin, db, protocol="sctp", port_range_min=5432, port_range_max=5432, remote_group_id=web)
    assert pending(cloud) == ["hv-b"]
    settle_all(cloud, inside)
    state = inside.get("/hosts/hv-b/firewall").json()
    (only,) = state["ports"]
    assert only["id"] == p_db["id"] and only["tap"] == "tap" + p_db["id"][:11]
    assert only["fixed_ips"] == [{"ip_address": p_db["fixed_ips"][0]["ip_address"]}]
    members = sorted(p["fixed_ips"][0]["ip_address"] for p in (p_web, p_fake))
    assert {
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": "132",  # named protocols go to the agents as numbers
        "port_range_min": 5432,
        "port_range_max": 5432,
        "remote_ip_prefix": None,
        "remote_ips": members,
    } in only["rules"]

    # A port moving into web (on hv-c) changes db's rule: hv-b, and its own host hv-c.
    p_new = port(admin, net, "hv-c", security_groups=[db])
    assert pending(cloud) == ["hv-c"]  # joined db, which no rule names as its remote group
    settle_all(cloud, inside)
    resp = admin.put(f"{V2}/ports/{p_new['id']}", json={"port": {"security_groups": [web]}})
    assert resp.status_code == 200, resp.text
    assert pending(cloud) == ["hv-b", "hv-c"]
    settle_all(cloud, inside)
    assert any(
        p_new["fixed_ips"][0]["ip_address"] in r.get("remote_ips", [])
        for r in inside.get("/hosts/hv-b/firewall").json()["ports"][0]["rules"]
    )

    # Port security off (groups removed in the same update): its host, and hv-b (web shrank).
    body = {"port": {"security_groups": [], "port_security_enabled": False}}
    assert admin.put(f"{V2}/ports/{p_web['id']}", json=body).status_code == 200
    assert pending(cloud) == ["hv-a", "hv-b"]
    settle_all(cloud, inside)
    (unfiltered,) = inside.get("/hosts/hv-a/firewall").json()["ports"]
    assert unfiltered["port_security_enabled"] is False and unfiltered["rules"] == []

    # Removing a rule, deleting a port: the same hosts as adding them.
    assert admin.delete(f"{V2}/security-group-rules/{ssh}").status_code == 204
    assert pending(cloud) == ["hv-c"]
    settle_all(cloud, inside)
    assert admin.delete(f"{V2}/ports/{p_new['id']}").status_code == 204
    assert pending(cloud) == ["hv-b", "hv-c"]
    settle_all(cloud, inside)

    # A port named by id is handed to a host it is not bound to (a migration's destination).
    named = inside.get("/hosts/hv-c/firewall", params=[("port_id", p_db["id"])]).json()["ports"]
    assert [p["id"] for p in named] == [p_db["id"]]
    assert inside.get("/hosts/hv-c/firewall").json()["ports"] == []
    assert httpx.get(f"{cloud.url}/internal/v1/hosts/hv-c/firewall").status_code == 401


def test_a_sync_that_ran_on_an_older_state_is_followed_by_another(cloud: Cloud) -> None:
    admin, inside = cloud.client(), internal(cloud)
    assert inside.put("/firewall-hosts/hv-a").status_code == 204
    net = created(admin.post(f"{V2}/networks", json={"network": {"name": "fw"}}), "network")["id"]
    web = group(admin, "web")
    port(admin, net, "hv-a", security_groups=[web])
    (task_id,) = [t for t in _pending_ids(cloud)]
    seen = inside.get("/hosts/hv-a/firewall").json()["generation"]  # the agent reads ...
    rule(admin, web, protocol="icmp")  # ... a change lands while it applies: no second task
    assert _pending_ids(cloud) == [task_id]
    report = {"results": [{"task_id": task_id, "ok": True, "details": {"applied_generation": seen}}]}
    assert inside.post("/tasks/results", json=report).status_code == 204
    (again,) = _pending_ids(cloud)  # the host is behind: the next sync is pending
    assert again != task_id
    with cloud.server.rt.db.read() as session:
        row = session.get_one(FirewallHost, "hv-a")
        assert row.applied_generation == seen < row.generation


def _pending_ids(cloud: Cloud) -> list[str]:
    with cloud.server.rt.db.read() as session:
        return list(
            session.scalars(select(Task.id).where(Task.kind == "firewall_sync", Task.state == "pending"))
        )


class WatchedDriver(FakeDriver):
    """The fake hypervisor, noting which taps had rules when each guest was built."""

    def __init__(self, host: str, firewall: RecordingFirewall) -> None:
        super().__init__(host)
        self.firewall = firewall
        self.taps_at_spawn: dict[str, set[str]] = {}

    def spawn(self, instance: dict[str, Any]) -> int:
        self.taps_at_spawn[instance["uuid"]] = self.firewall.taps()
        return super().spawn(instance)

    def attach_interface(self, instance: dict[str, Any], port: dict[str, Any]) -> None:
        self.taps_at_spawn[port["id"]] = self.firewall.taps()
        super().attach_interface(instance, port)


@pytest.fixture
def firewall_agent(cloud: Cloud) -> Iterator[tuple[RecordingFirewall, WatchedDriver]]:
    recording = RecordingFirewall()
    driver = WatchedDriver("hv-fw", recording)
    token = cloud.settings.secret("agent_token")
    agent = Agent(
        cloud.url,
        "hv-fw",
        driver,
        token,
        poll_wait=1.0,
        firewall=FirewallSync(recording, exists=lambda tap: False),
    ).start()
    yield recording, driver
    agent.stop()


@pytest.fixture
def firewall_host(firewall_agent: tuple[RecordingFirewall, WatchedDriver]) -> RecordingFirewall:
    return firewall_agent[0]


def test_a_server_is_filtered_before_it_is_built_and_unfiltered_once_deleted(
    cloud: Cloud, firewall_agent: tuple[RecordingFirewall, WatchedDriver]
) -> None:
    recording, driver = firewall_agent
    sdk = connect(cloud)
    try:
        flavor = sdk.compute.create_flavor(name="fw.tiny", vcpus=1, ram=128, disk=1)
        image = sdk.image.create_image(
            "fw-image", data=IMAGE_DATA, disk_format="raw", container_format="bare", visibility="public"
        )
        net = sdk.network.create_network(name="fw-net")
        sdk.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.63.0.0/24")
        server = sdk.compute.create_server(
            name="fw-vm", flavor_id=flavor.id, image_id=image.id, networks=[{"uuid": net.id}]
        )
        server = wait_status(sdk, server, "ACTIVE")
        [port] = list(sdk.network.ports(device_id=server.id))
        tap = "tap" + port.id[:11]
        assert tap in driver.taps_at_spawn[server.id]  # its rules were there when it was built
        ingress = [r for r in recording.ports[tap].rules if (r.direction, r.ethertype) == ("ingress", "IPv4")]
        assert [r.remote_ips for r in ingress] == [(port.fixed_ips[0]["ip_address"],)]  # default: members
        sdk.compute.delete_server(server.id)
        wait_for(lambda: tap not in recording.ports)
    finally:
        sdk.close()


def test_an_agent_applies_rule_changes_live_and_drops_ports_that_leave(
    cloud: Cloud, firewall_host: RecordingFirewall
) -> None:
    admin = cloud.client()
    net = created(admin.post(f"{V2}/networks", json={"network": {"name": "live"}}), "network")["id"]
    created(
        admin.post(
            f"{V2}/subnets", json={"subnet": {"network_id": net, "cidr": "10.62.0.0/24", "ip_version": 4}}
        ),
        "subnet",
    )
    web = group(admin, "web")
    p = port(admin, net, "hv-fw", security_groups=[web])
    tap = "tap" + p["id"][:11]
    wait_for(lambda: tap in firewall_host.ports)
    assert not any(r.port_range_min == 22 for r in firewall_host.ports[tap].rules)
    rule_id = rule(admin, web, protocol="tcp", port_range_min=22, port_range_max=22)
    wait_for(lambda: any(r.port_range_min == 22 for r in firewall_host.ports[tap].rules))
    assert admin.delete(f"{V2}/security-group-rules/{rule_id}").status_code == 204
    wait_for(lambda: not any(r.port_range_min == 22 for r in firewall_host.ports[tap].rules))
    # Unbound from the host: its rules go from this host.
    resp = admin.put(f"{V2}/ports/{p['id']}", json={"port": {"binding:host_id": ""}})
    assert resp.status_code == 200, resp.text
    wait_for(lambda: tap not in firewall_host.ports)


def test_an_attached_interface_is_filtered_before_it_is_plugged_and_a_server_group_change_applies(
    cloud: Cloud, firewall_agent: tuple[RecordingFirewall, WatchedDriver]
) -> None:
    recording, driver = firewall_agent
    sdk = connect(cloud)
    try:
        flavor = sdk.compute.create_flavor(name="fw.if", vcpus=1, ram=128, disk=1)
        image = sdk.image.create_image(
            "fw-if-image", data=IMAGE_DATA, disk_format="raw", container_format="bare", visibility="public"
        )
        nets = []
        for index in (1, 2):
            net = sdk.network.create_network(name=f"fw-if-{index}")
            sdk.network.create_subnet(network_id=net.id, ip_version=4, cidr=f"10.64.{index}.0/24")
            nets.append(net)
        server = sdk.compute.create_server(
            name="fw-if-vm", flavor_id=flavor.id, image_id=image.id, networks=[{"uuid": nets[0].id}]
        )
        server = wait_status(sdk, server, "ACTIVE")
        attached = sdk.compute.create_server_interface(server, net_id=nets[1].id)
        tap = "tap" + attached.port_id[:11]
        wait_for(lambda: attached.port_id in driver.taps_at_spawn)
        assert tap in driver.taps_at_spawn[attached.port_id]  # its rules were there when it was plugged
        web = sdk.network.create_security_group(name="fw-if-web")
        sdk.network.create_security_group_rule(
            security_group_id=web.id,
            direction="ingress",
            protocol="tcp",
            port_range_min=80,
            port_range_max=80,
        )
        sdk.compute.add_security_group_to_server(server, web)
        wait_for(lambda: any(r.port_range_min == 80 for r in recording.ports[tap].rules))
        sdk.compute.remove_security_group_from_server(server, web)
        wait_for(lambda: not any(r.port_range_min == 80 for r in recording.ports[tap].rules))
        sdk.compute.delete_server_interface(attached.port_id, server=server)
        wait_for(lambda: tap not in recording.ports)
        sdk.compute.delete_server(server.id)
    finally:
        sdk.close()


def _in_thread(work: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 — handed to the test's assertion
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def test_a_batch_settle_and_a_port_change_lock_network_and_host_in_one_order(pg_cloud: Cloud) -> None:
    """Two real PostgreSQL transactions interleaved in the two orders the reviewer found: a batch
    settle (a firewall_sync's result, then another result that locks the network: a server's
    ports released) and a port change (the network's lock, then the host's). Before the hosts'
    rows were locked at commit only, the settle held firewall_hosts(H) while it waited for the
    network, the port change held the network while it waited for H: PostgreSQL's deadlock
    detector aborted one. Now both commit, and nothing is lost: the host is one generation past
    what was applied and exactly one sync is pending."""
    cloud, inside = pg_cloud, internal(pg_cloud)
    admin = cloud.client()
    assert inside.put("/firewall-hosts/hv-a").status_code == 204
    net = created(admin.post(f"{V2}/networks", json={"network": {"name": "locks"}}), "network")["id"]
    (task_id,) = _pending_ids(cloud)
    applied = inside.get("/hosts/hv-a/firewall").json()["generation"]
    db = cloud.server.rt.db
    settled, network_taken = threading.Event(), threading.Event()

    def batch_settle() -> None:
        with db.transaction() as session:
            service.complete(session, task_id, TaskResult(ok=True, details={"applied_generation": applied}))
            settled.set()
            assert network_taken.wait(10)
            ipam.lock_network(session, net)  # the batch's next result: release_server_ports

    def port_change() -> None:
        assert settled.wait(10)
        with db.transaction() as session:
            ipam.lock_network(session, net)
            network_taken.set()
            time.sleep(0.5)  # the settle now waits for the network
            firewall.request(session, ["hv-a"])

    runs = [_in_thread(batch_settle), _in_thread(port_change)]
    for thread, _ in runs:
        thread.join(30)
        assert not thread.is_alive()
    assert [error for _, errors in runs for error in errors] == []
    with db.read() as session:
        row = session.get_one(FirewallHost, "hv-a")
        assert (row.applied_generation, row.generation) == (applied, applied + 1)
    (again,) = _pending_ids(cloud)
    assert again != task_id


def test_hosts_are_locked_in_name_order_however_a_transaction_names_them(pg_cloud: Cloud) -> None:
    """Two transactions naming the same hosts in opposite orders, each holding its first
    host's change while the other names its own: both commit (the rows are taken at commit,
    sorted), each host two generations on."""
    cloud, inside = pg_cloud, internal(pg_cloud)
    for host in ("hv-a", "hv-b"):
        assert inside.put(f"/firewall-hosts/{host}").status_code == 204
    db = cloud.server.rt.db
    with db.read() as session:
        before = {h.host: h.generation for h in session.scalars(select(FirewallHost))}
    first = {"ab": threading.Event(), "ba": threading.Event()}

    def change(order: str) -> None:
        other = "ba" if order == "ab" else "ab"
        with db.transaction() as session:
            firewall.request(session, ["hv-" + order[0]])
            session.flush()
            first[order].set()
            assert first[other].wait(10)
            firewall.request(session, ["hv-" + order[1]])

    runs = [_in_thread(lambda: change("ab")), _in_thread(lambda: change("ba"))]
    for thread, _ in runs:
        thread.join(30)
        assert not thread.is_alive()
    assert [error for _, errors in runs for error in errors] == []
    with db.read() as session:
        after = {h.host: h.generation for h in session.scalars(select(FirewallHost))}
    assert after == {host: generation + 2 for host, generation in before.items()}


def test_a_host_that_cannot_enforce_gets_no_firewall_work(any_cloud: Cloud) -> None:
    """DELETE /internal/v1/firewall-hosts/{host} (an agent of real guests with no usable
    firewall): its pending sync is cancelled, and later changes of its ports give it none."""
    cloud = any_cloud
    admin, inside = cloud.client(), internal(cloud)
    assert inside.put("/firewall-hosts/hv-a").status_code == 204
    assert pending(cloud) == ["hv-a"]
    assert inside.delete("/firewall-hosts/hv-a").status_code == 204
    assert inside.delete("/firewall-hosts/hv-never").status_code == 204  # idempotent
    assert pending(cloud) == []
    with cloud.server.rt.db.read() as session:
        assert session.get(FirewallHost, "hv-a") is None
    net = created(admin.post(f"{V2}/networks", json={"network": {"name": "fw"}}), "network")["id"]
    web = group(admin, "web")
    port(admin, net, "hv-a", security_groups=[web])
    rule(admin, web, protocol="tcp", port_range_min=22, port_range_max=22)
    assert pending(cloud) == []
    assert httpx.delete(f"{cloud.url}/internal/v1/firewall-hosts/hv-a").status_code == 401


def test_an_unfiltered_agent_unregisters_its_host_at_start(cloud: Cloud) -> None:
    inside = internal(cloud)
    assert inside.put("/firewall-hosts/hv-bare").status_code == 204
    token = cloud.settings.secret("agent_token")
    agent = Agent(cloud.url, "hv-bare", FakeDriver("hv-bare"), token, poll_wait=1.0, unfiltered=True).start()
    try:
        with cloud.server.rt.db.read() as session:
            assert session.get(FirewallHost, "hv-bare") is None
        assert pending(cloud) == []
    finally:
        agent.stop()


class FailsOnce(RecordingFirewall):
    """Fails as many applies as `failures` says (the xtables lock held elsewhere), then works."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    def apply(self, ports: Sequence[PortFirewall]) -> None:
        if self.failures:
            self.failures -= 1
            raise NetworkError("iptables-restore: Another app is currently holding the xtables lock")
        super().apply(ports)


def test_a_failed_sync_is_retried_by_its_agent_until_the_host_is_up_to_date(cloud: Cloud) -> None:
    """A rule removal whose sync failed does not stay open: the agent asks again after its
    backoff, and the host's applied generation catches up with its generation."""
    admin = cloud.client()
    net = created(admin.post(f"{V2}/networks", json={"network": {"name": "retry"}}), "network")["id"]
    web = group(admin, "web")
    ssh = rule(admin, web, protocol="tcp", port_range_min=22, port_range_max=22)
    p = port(admin, net, "hv-retry", security_groups=[web])
    tap = "tap" + p["id"][:11]
    recording = FailsOnce()
    token = cloud.settings.secret("agent_token")
    sync = FirewallSync(recording, exists=lambda tap: False)
    agent = Agent(cloud.url, "hv-retry", FakeDriver("hv-retry"), token, poll_wait=1.0, firewall=sync).start()
    try:
        wait_for(lambda: any(r.port_range_min == 22 for r in recording.ports.get(tap, PORTLESS).rules))
        recording.failures = 1
        assert admin.delete(f"{V2}/security-group-rules/{ssh}").status_code == 204
        wait_for(lambda: _failed_syncs(cloud, "hv-retry") == 1)
        assert any(r.port_range_min == 22 for r in recording.ports[tap].rules)  # open, for now
        wait_for(lambda: not any(r.port_range_min == 22 for r in recording.ports[tap].rules), timeout=30)

        def caught_up() -> bool:
            with cloud.server.rt.db.read() as session:
                row = session.get_one(FirewallHost, "hv-retry")
                return row.applied_generation == row.generation

        wait_for(caught_up)
    finally:
        agent.stop()


PORTLESS = PortFirewall("none", "fa:16:3e:00:00:00", ())


def _failed_syncs(cloud: Cloud, host: str) -> int:
    with cloud.server.rt.db.read() as session:
        rows = session.scalars(
            select(Task.id).where(Task.host == host, Task.kind == "firewall_sync", Task.state == "failed")
        )
        return len(list(rows))


def test_a_group_removed_through_compute_reaches_the_agent_at_once(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """removeSecurityGroup through the compute API commits a firewall_sync whose host's agent is
    woken by the commit (kumo.db.wake_after_commit), not found by its long poll's re-read: both
    the agent's poll and the API's re-read are set to 20 s here."""
    monkeypatch.setattr(cloud.settings, "task_poll_recheck_seconds", 20.0)
    recording = RecordingFirewall()
    token = cloud.settings.secret("agent_token")
    sync = FirewallSync(recording, exists=lambda tap: False)
    agent = Agent(cloud.url, "hv-wake", FakeDriver("hv-wake"), token, poll_wait=20.0, firewall=sync).start()
    sdk = connect(cloud)
    try:
        flavor = sdk.compute.create_flavor(name="fw.wake", vcpus=1, ram=128, disk=1)
        image = sdk.image.create_image(
            "fw-wake-image", data=IMAGE_DATA, disk_format="raw", container_format="bare", visibility="public"
        )
        net = sdk.network.create_network(name="fw-wake")
        sdk.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.65.0.0/24")
        server = sdk.compute.create_server(
            name="fw-wake-vm", flavor_id=flavor.id, image_id=image.id, networks=[{"uuid": net.id}]
        )
        server = wait_status(sdk, server, "ACTIVE")
        [p] = list(sdk.network.ports(device_id=server.id))
        tap = "tap" + p.id[:11]
        web = sdk.network.create_security_group(name="fw-wake-web")
        sdk.network.create_security_group_rule(
            security_group_id=web.id,
            direction="ingress",
            protocol="tcp",
            port_range_min=80,
            port_range_max=80,
        )

        def opened() -> bool:
            return tap in recording.ports and any(r.port_range_min == 80 for r in recording.ports[tap].rules)

        started = time.monotonic()
        sdk.compute.add_security_group_to_server(server, web)
        wait_for(opened, timeout=10)
        added = time.monotonic() - started
        started = time.monotonic()
        sdk.compute.remove_security_group_from_server(server, web)
        wait_for(lambda: not opened(), timeout=10)
        removed = time.monotonic() - started
        print(f"\nadded group applied in {1000 * added:.0f} ms, removed in {1000 * removed:.0f} ms")
        assert added < 5.0 and removed < 5.0  # the polls alone would take 20 s
        sdk.compute.delete_server(server.id)
        wait_for(lambda: tap not in recording.ports, timeout=10)  # a delete wakes it too
    finally:
        sdk.close()
        agent.stop()
