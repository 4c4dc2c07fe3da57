"""Health canaries against an in-process cloud with fake hypervisors, through the public API as
their service user: a healthy cloud passes (per zone and per host, from the loop), each step's
request id is its instance action's, nothing is left behind; a host whose driver fails is
down-weighted (the scheduler sends servers elsewhere), then disabled with reason `canary`, and
enabled again once it passes; a host an operator disabled is never canaried by the loop; the
results show in os-kumo-canaries (latest=true: each target's newest run) and at /metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kumo import allinone
from kumo.agent.drivers import fake
from kumo.canary.loop import (
    CANARY_PROJECT,
    CANARY_USER,
    KEY_PAIR,
    CanaryLoop,
    ensure_canary_user,
    login,
    resolve_spec,
)
from kumo.canary.policy import AZ, HOST, MIGRATION, CanaryPolicy
from kumo.canary.probe import Prober
from kumo.canary.ssh import RunnerFailed
from tests.conftest import DEMO_PASSWORD, Cloud, Fleet, wait_for
from tests.integration.libvirt.conftest import upload

HOSTS = ("canary-h1", "canary-h2")
FLAVOR = {"name": "c1.tiny", "vcpus": 1, "ram": 128, "disk": 1}
POLICY = CanaryPolicy(suspect_after=2, disable_after=3, retry_interval=0.01)


@dataclass
class Canaries:
    cloud: Cloud
    api: httpx.Client  # the canary service user's
    prober: Prober

    def overview(self, **params: str) -> dict[str, Any]:
        resp = self.api.get("/compute/v2.1/os-kumo-canaries", params=params)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def service(self, host: str) -> dict[str, Any]:
        services = self.api.get("/compute/v2.1/os-services", params={"host": host}).json()["services"]
        return dict(services[0])

    def run(self, scope: str, target: str) -> dict[str, Any]:
        return self.prober.report(self.prober.run(scope, target, "nova" if scope == HOST else None))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_cloud(request: pytest.FixtureRequest) -> Iterator[tuple[Cloud, Fleet]]:
    """The failing-host test runs on both stores (the snapshot's read of the host's penalty)."""
    name = "cloud" if request.param == "sqlite" else "pg_cloud"
    yield request.getfixturevalue(name), request.getfixturevalue("fleet" if name == "cloud" else "pg_fleet")


@pytest.fixture
def canaries(cloud: Cloud, fleet: Fleet) -> Iterator[Canaries]:
    yield from _canaries(cloud, fleet)


@pytest.fixture
def both_canaries(any_cloud: tuple[Cloud, Fleet]) -> Iterator[Canaries]:
    yield from _canaries(*any_cloud)


def _canaries(cloud: Cloud, fleet: Fleet) -> Iterator[Canaries]:
    cloud.settings.canary_suspect_after = POLICY.suspect_after
    cloud.settings.canary_disable_after = POLICY.disable_after
    for host in HOSTS:
        fleet.add(host, heartbeat_interval=0.5)
        fake.mend_host(host)
    with cloud.client() as admin:
        assert admin.post("/compute/v2.1/flavors", json={"flavor": FLAVOR}).status_code == 200
        upload(admin, "kumo-test-image", b"\0" * 4096, "raw")
        ensure_canary_user(admin, "canary-secret")
    token = login(cloud.url, CANARY_USER, "canary-secret", CANARY_PROJECT)
    with httpx.Client(base_url=cloud.url, headers={"X-Auth-Token": token}, timeout=30) as api:
        yield Canaries(cloud, api, Prober(api, resolve_spec(api, "kumo-test-image", "c1.tiny")))
    for host in HOSTS:
        fake.mend_host(host)


def nothing_left(c: Canaries) -> None:
    """No guest on any fake hypervisor, no allocation of anyone's, no server."""
    assert all(not fake.FakeDriver(host).power_states() for host in HOSTS)
    servers = c.api.get("/compute/v2.1/servers", params={"all_tenants": "1"}).json()["servers"]
    assert servers == []
    for host in HOSTS:
        usage = c.api.get(
            "/compute/v2.1/os-hypervisors/detail", headers={"OpenStack-API-Version": "compute 2.53"}
        ).json()["hypervisors"]
        assert all(h["running_vms"] == 0 for h in usage), host


def test_a_healthy_cloud_passes_its_zone_and_host_canaries(canaries: Canaries) -> None:
    """… and an operator's disabling stays; reports are checked and admin only."""
    loop = CanaryLoop(
        canaries.cloud.url,
        lambda: str(canaries.api.headers["X-Auth-Token"]),
        lambda api: canaries.prober.spec,
        POLICY,
    )
    done = loop.pass_once()  # a first pass: the zone, its live migration, each host (they just joined)
    assert [(r["scope"], r["target"]) for r in done] == [
        (AZ, "nova"),
        (MIGRATION, "nova"),
        (HOST, HOSTS[0]),
        (HOST, HOSTS[1]),
    ]
    assert all(r["ok"] for r in done), done
    migration = done[1]
    assert migration["host"] is None and migration["verdict"] is None  # no one host's verdict
    (moved,) = [s["detail"] for s in migration["steps"] if s["step"] == "migrate"]
    assert moved in (f"{HOSTS[0]} → {HOSTS[1]}", f"{HOSTS[1]} → {HOSTS[0]}")
    assert loop.pass_once() == []  # nothing is due again so soon
    zone = done[0]
    assert [s["step"] for s in zone["steps"]] == [
        "create",
        "active",
        "console",
        "stop",
        "delete",
        "leftovers",
    ]
    assert zone["host"] in HOSTS and zone["availability_zone"] == "nova"
    # Each server action's request id is its instance action's.
    with canaries.cloud.client(microversion="2.21") as admin:
        for step, action in (("create", "create"), ("stop", "stop"), ("delete", "delete")):
            request_id = next(s["request_id"] for s in zone["steps"] if s["step"] == step)
            resp = admin.get(f"/compute/v2.1/servers/{zone['server_id']}/os-instance-actions/{request_id}")
            assert resp.status_code == 200, (step, resp.text)
            assert resp.json()["instanceAction"]["action"] == action
    nothing_left(canaries)
    shown = canaries.overview()
    assert {h["host"]: (h["verdict"], h["down_weighted"]) for h in shown["hosts"]} == {
        HOSTS[0]: ("healthy", False),
        HOSTS[1]: ("healthy", False),
    }
    metrics = httpx.get(f"{canaries.cloud.url}/metrics").text
    assert 'kumo_canary_last_success{scope="az",target="nova"} 1.0' in metrics
    assert f'kumo_canary_last_success{{scope="host",target="{HOSTS[1]}"}} 1.0' in metrics
    # An operator's disabling is never undone by a canary (forced onto the host, it passes).
    host = HOSTS[0]
    resp = canaries.api.put(
        "/compute/v2.1/os-services/disable-log-reason",
        json={"host": host, "binary": "nova-compute", "disabled_reason": "maintenance"},
    )
    assert resp.status_code == 200, resp.text
    assert canaries.run(HOST, host)["ok"]  # forced onto the disabled host: it passes …
    service = canaries.service(host)
    assert (service["status"], service["disabled_reason"]) == ("disabled", "maintenance")  # … and stays off
    # The loop itself never canaries an operator's maintenance host, even when its host canary is due.
    eager = CanaryLoop(
        canaries.cloud.url,
        lambda: str(canaries.api.headers["X-Auth-Token"]),
        lambda api: canaries.prober.spec,
        CanaryPolicy(host_interval=0.0, az_interval=1e9, migration_interval=1e9),
    )
    assert [(r["scope"], r["target"]) for r in eager.pass_once()] == [(HOST, HOSTS[1])]
    # latest=true: each (scope, target)'s newest run, once (what the loop reads: no limit to fall past).
    latest = canaries.overview(latest="true")["canaries"]
    assert sorted((r["scope"], r["target"]) for r in latest) == sorted(
        [(AZ, "nova"), (MIGRATION, "nova"), (HOST, HOSTS[0]), (HOST, HOSTS[1])]
    )
    newest = canaries.overview(scope=HOST, limit="1")["canaries"][0]
    assert newest["target"] == HOSTS[1] and newest in latest
    assert canaries.api.get("/compute/v2.1/os-kumo-canaries", params={"latest": "yes"}).status_code == 400
    bad = {
        "canary": {
            "scope": "rack",
            "target": "x",
            "ok": True,
            "steps": [],
            "started_at": "x",
            "finished_at": "x",
        }
    }
    resp = canaries.api.post("/compute/v2.1/os-kumo-canaries", json=bad)
    assert resp.status_code == 400 and "scope" in resp.json()["badRequest"]["message"]
    with canaries.cloud.client(canaries.cloud.token("demo", DEMO_PASSWORD, "demo")) as demo:
        assert demo.get("/compute/v2.1/os-kumo-canaries").status_code == 403
        assert demo.post("/compute/v2.1/os-kumo-canaries", json=bad).status_code == 403


def test_a_failing_host_is_down_weighted_then_disabled_then_enabled_when_it_passes(
    both_canaries: Canaries,
) -> None:
    canaries = both_canaries
    good, bad = HOSTS
    fake.break_host(bad, "the disk is gone")
    first = canaries.run(HOST, bad)
    assert (first["ok"], first["failed_step"], first["verdict"]) == (False, "active", "healthy")
    assert "the disk is gone" in first["error"]
    assert [s["step"] for s in first["steps"]][-1] == "cleanup"  # its server was deleted
    retry = canaries.run(HOST, bad)
    assert (retry["ok"], retry["verdict"]) == (False, "suspect")
    # Down-weighted: new servers go to the healthy host, though both have the same room.
    with canaries.cloud.client() as admin:
        spec = canaries.prober.spec
        body = {"server": {"name": "x", "flavorRef": spec.flavor, "imageRef": spec.image, "min_count": 3}}
        body["server"]["networks"] = "none"
        resp = admin.post(
            "/compute/v2.1/servers", json=body, headers={"OpenStack-API-Version": "compute 2.37"}
        )
        assert resp.status_code == 202, resp.text

        def placed() -> list[dict[str, Any]] | None:
            found = admin.get("/compute/v2.1/servers/detail", params={"name": "x"}).json()["servers"]
            return found if found and all(s["status"] == "ACTIVE" for s in found) else None

        servers = wait_for(placed, timeout=30, interval=0.1)
        assert {s["OS-EXT-SRV-ATTR:host"] for s in servers} == {good}
        for server in servers:
            assert admin.delete(f"/compute/v2.1/servers/{server['id']}").status_code == 204
        wait_for(lambda: not admin.get("/compute/v2.1/servers").json()["servers"], timeout=30, interval=0.1)
    assert canaries.service(bad)["status"] == "enabled"
    third = canaries.run(HOST, bad)
    assert (third["ok"], third["verdict"]) == (False, "failing")
    service = canaries.service(bad)
    assert (service["status"], service["disabled_reason"]) == ("disabled", "canary")
    standing = {h["host"]: h for h in canaries.overview()["hosts"]}[bad]
    assert (standing["consecutive_failures"], standing["down_weighted"]) == (3, True)
    assert standing["last_run"]["id"] == third["id"]
    metrics = httpx.get(f"{canaries.cloud.url}/metrics").text
    assert 'kumo_canary_hosts{state="disabled"} 1.0' in metrics
    assert f'kumo_canary_last_success{{scope="host",target="{bad}"}} 0.0' in metrics
    # Mended: its next canary (forced onto it while disabled) passes and enables it again.
    fake.mend_host(bad)
    mended = canaries.run(HOST, bad)
    assert (mended["ok"], mended["host"], mended["verdict"]) == (True, bad, "healthy")
    service = canaries.service(bad)
    assert (service["status"], service["disabled_reason"]) == ("enabled", None)
    assert {h["host"]: h for h in canaries.overview()["hosts"]}[bad]["down_weighted"] is False
    nothing_left(canaries)


def test_on_a_tenant_network_a_guest_must_read_its_own_metadata(canaries: Canaries, tmp_path: Path) -> None:
    """With a network, the canary also checks what the guest read from its metadata (and, with
    its key pair, logs in: skipped on a fake hypervisor, there is no guest); a host whose guests
    read another instance's metadata fails at step `metadata`, which counts toward its verdict."""
    api = canaries.api
    net = api.post("/networking/v2.0/networks", json={"network": {"name": "canary-net"}})
    assert net.status_code == 201, net.text
    subnet = {"subnet": {"network_id": net.json()["network"]["id"], "cidr": "10.61.0.0/24", "ip_version": 4}}
    assert api.post("/networking/v2.0/subnets", json=subnet).status_code == 201
    spec = resolve_spec(api, "kumo-test-image", "c1.tiny", "canary-net", tmp_path / "keys")
    assert (spec.network, spec.key_name) == (net.json()["network"]["id"], KEY_PAIR)
    assert spec.key_file is not None and spec.key_file.exists() and spec.security_group
    assert resolve_spec(api, "kumo-test-image", "c1.tiny", "canary-net", tmp_path / "keys") == spec  # once
    group = api.get(f"/networking/v2.0/security-groups/{spec.security_group}").json()["security_group"]
    rules = group["security_group_rules"]
    ssh_rules = [
        (r["protocol"], r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"])
        for r in rules
        if r["direction"] == "ingress"
    ]
    assert ssh_rules == [("tcp", 22, 22, "10.61.0.0/24")]  # from the network's subnet only
    # a group whose rule went missing gets it back, the next time the spec is resolved
    rule = next(r for r in rules if r["direction"] == "ingress")
    assert api.delete(f"/networking/v2.0/security-group-rules/{rule['id']}").status_code == 204
    assert resolve_spec(api, "kumo-test-image", "c1.tiny", "canary-net", tmp_path / "keys") == spec
    again = api.get(f"/networking/v2.0/security-groups/{spec.security_group}").json()["security_group"]
    ingress = [r for r in again["security_group_rules"] if r["direction"] == "ingress"]
    assert [(r["port_range_min"], r["remote_ip_prefix"]) for r in ingress] == [(22, "10.61.0.0/24")]
    prober = Prober(api, spec)
    good, bad = HOSTS

    passed = prober.report(prober.run(HOST, good, "nova"))
    assert passed["ok"], (passed["failed_step"], passed["error"])
    steps = {s["step"]: s for s in passed["steps"]}
    assert list(steps) == [
        "create",
        "active",
        "console",
        "network",
        "metadata",
        "ssh",
        "stop",
        "delete",
        "leftovers",
    ]
    assert re.fullmatch(
        rf"source=metadata uuid={passed['server_id']} hostname=kumo-canary-host-{good}\.novalocal keys=1",
        steps["metadata"]["detail"],
    ), steps["metadata"]
    assert steps["ssh"]["ok"] and steps["ssh"]["detail"] == "skipped: no real guest (a fake hypervisor)"

    fake.misroute_metadata(bad)
    for verdict in ("healthy", "suspect"):  # a failure, then its failed retry: down-weighted
        failed = prober.report(prober.run(HOST, bad, "nova"))
        assert (failed["ok"], failed["failed_step"], failed["host"]) == (False, "metadata", bad)
        assert failed["verdict"] == verdict
        assert failed["error"].startswith("the guest read the metadata of "), failed["error"]
        assert f"not of {failed['server_id']}" in failed["error"]
        assert failed["steps"][-1]["step"] == "cleanup" and failed["steps"][-1]["ok"]
    standing = {h["host"]: h for h in canaries.overview()["hosts"]}[bad]
    assert (standing["consecutive_failures"], standing["down_weighted"]) == (2, True)
    nothing_left(canaries)
    ports = api.get("/networking/v2.0/ports", params={"device_owner": "compute:nova"}).json()["ports"]
    assert ports == []


class NoLoginRunner:
    """A runner that may not enter the network's namespace (not root): every login fails there."""

    def __init__(self) -> None:
        self.logins = 0

    def run(self, address: str, network: str, command: str) -> str:
        self.logins += 1
        raise RunnerFailed(
            f"ssh root@{address}: setting the network namespace failed: Operation not permitted"
        )

    def route(self, network: str) -> str:
        return f"from namespace qdhcp-{network}"


def test_a_runner_that_cannot_log_in_moves_no_hosts_verdict(
    canaries: Canaries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guests that run an SSH server (their boot line says ssh=up) and a runner whose every
    login fails for its own reason: each canary fails at step ssh, reported without a host, and
    the host stays healthy and enabled however often it runs."""
    api = canaries.api
    net = api.post("/networking/v2.0/networks", json={"network": {"name": "canary-net"}}).json()["network"]
    subnet = {"subnet": {"network_id": net["id"], "cidr": "10.62.0.0/24", "ip_version": 4}}
    assert api.post("/networking/v2.0/subnets", json=subnet).status_code == 201
    spec = resolve_spec(api, "kumo-test-image", "c1.tiny", net["id"], tmp_path / "keys")  # by id
    assert spec.network == net["id"]
    real_boot_line = fake.boot_line
    monkeypatch.setattr(fake, "boot_line", lambda i: real_boot_line(i).replace("ssh=off", "ssh=up"))
    runner = NoLoginRunner()
    prober = Prober(api, spec, shell=runner)
    host = HOSTS[0]
    for _ in range(POLICY.disable_after + 1):
        failed = prober.report(prober.run(HOST, host, "nova"))
        assert (failed["ok"], failed["failed_step"], failed["host"]) == (False, "ssh", None)
        assert "the runner cannot log in" in failed["error"], failed["error"]
        assert failed["verdict"] is None, failed
    assert runner.logins == POLICY.disable_after + 1  # not retried
    service = canaries.service(host)
    assert (service["status"], service["disabled_reason"]) == ("enabled", None)
    standing = {h["host"]: h for h in canaries.overview()["hosts"]}.get(host)
    assert standing is None or (standing["consecutive_failures"], standing["down_weighted"]) == (0, False)
    nothing_left(canaries)


class RecordedLoop:
    """In place of the CanaryLoop `kumo up` starts: what it was handed, nothing run."""

    def __init__(self, url: str, token: Any, spec: Any, policy: CanaryPolicy) -> None:
        self.token, self.spec = token, spec

    def start(self) -> RecordedLoop:
        return self


def test_kumo_up_logs_in_only_into_real_guests_it_reaches(
    canaries: Canaries, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kumo up --canaries` hands the loop the public network by id; the key pair (the SSH
    login) only when real guests run and this machine reaches the network."""
    cloud, api = canaries.cloud, canaries.api
    net = api.post("/networking/v2.0/networks", json={"network": {"name": "up-net"}}).json()["network"]
    subnet = {"subnet": {"network_id": net["id"], "cidr": "10.63.0.0/24", "ip_version": 4}}
    assert api.post("/networking/v2.0/subnets", json=subnet).status_code == 201
    monkeypatch.setattr(allinone, "CanaryLoop", RecordedLoop)
    admin = cloud.token()
    for ssh in (False, True):
        loop: Any = allinone.start_canaries(
            cloud.url, admin, cloud.settings, "kumo-test-image", net["id"], ssh
        )
        # its password set again: the canary user's token the loop would log in with
        with httpx.Client(base_url=cloud.url, headers={"X-Auth-Token": loop.token()}, timeout=30) as client:
            spec = loop.spec(client)
        assert spec.network == net["id"]
        if ssh:
            assert (spec.key_name, spec.key_file) == (
                KEY_PAIR,
                cloud.settings.state_dir / "canary" / "id_ed25519",
            )
        else:
            assert (spec.key_name, spec.key_file, spec.security_group) == (None, None, None)
