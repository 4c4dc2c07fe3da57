"""The issue's journey at the API level, every part real: a network and subnet made through the
Neutron API, a key pair, and a server booted on that network through the compute API onto a
libvirt hypervisor whose agent is also the network host. The guest gets its port's address from
kumo's dnsmasq, reads its key from kumo's metadata service (169.254.169.254, inside the
network's namespace) and answers SSH with that key once the default security group admits it
(the agent enforces security groups, as every agent of real guests does). The tenant network is
not routed to the host: the test reaches the guest from inside the network's namespace."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from kumo.agent.firewall_sync import FirewallSync
from kumo.agent.netsync import LinuxDataPlane, NetworkSync
from kumo.agent.network.firewall.iptables import IptablesFirewall
from kumo.agent.network.host import NetworkHost
from kumo.agent.network.spec import namespace_name
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.canary.loop import CANARY_PROJECT, CANARY_USER, ensure_canary_user, login, resolve_spec
from kumo.canary.policy import AZ
from kumo.canary.probe import Prober
from kumo.metadata.service import MetadataService
from kumo.network.models import Network
from tests.conftest import Cloud, wait_for
from tests.functional.network.test_api import V2, created
from tests.integration.libvirt.conftest import (
    COMPUTE,
    MARKER,
    GuestImage,
    Hypervisor,
    start_hypervisor,
    stop_hypervisor,
)
from tests.integration.network.conftest import network_ready  # noqa: F401  (the fixture)


@pytest.fixture
def network_host(
    network_ready: None,  # noqa: F811
    cloud: Cloud,
    tmp_path: Path,
    test_image: GuestImage,
) -> Iterator[Hypervisor]:
    state = Path(tempfile.mkdtemp(prefix="kumo-net-e2e-", dir="/var/tmp"))
    state.chmod(0o755)  # dnsmasq reads its hosts directory as nobody
    net_host = NetworkHost(state, IptablesFirewall())
    metadata = MetadataService.from_api(cloud.url, {AGENT_TOKEN_HEADER: cloud.settings.secret("agent_token")})
    metadata.start()
    hv = start_hypervisor(
        cloud,
        tmp_path / "host",
        network=NetworkSync(LinuxDataPlane(net_host), metadata),
        firewall=FirewallSync(net_host.firewall),
    )
    hv.image_id = hv.upload_test_image(test_image)
    try:
        yield hv
    finally:
        stop_hypervisor(hv)
        metadata.stop()
        # This cloud's networks only: other tests and benchmarks on the machine have their own.
        with cloud.server.rt.db.read() as session:
            mine = list(session.scalars(select(Network.id)))
        for network_id in mine:
            net_host.remove(network_id)
        shutil.rmtree(state, ignore_errors=True)


def default_group(admin: httpx.Client) -> str:
    """The id of the caller's project's `default` security group."""
    project = admin.get(
        "/identity/v3/auth/tokens", headers={"X-Subject-Token": admin.headers["X-Auth-Token"]}
    )
    project_id = project.json()["token"]["project"]["id"]
    groups = admin.get(f"{V2}/security-groups", params={"name": "default", "project_id": project_id})
    (group,) = groups.json()["security_groups"]
    return str(group["id"])


def allow_ssh(admin: httpx.Client) -> str:
    """`openstack security group rule create --protocol tcp --dst-port 22 default`: the rule's id."""
    body = {
        "security_group_rule": {
            "security_group_id": default_group(admin),
            "direction": "ingress",
            "protocol": "tcp",
            "port_range_min": 22,
            "port_range_max": 22,
        }
    }
    return str(created(admin.post(f"{V2}/security-group-rules", json=body), "security_group_rule")["id"])


def test_a_server_on_a_tenant_network_gets_its_address_and_key_and_answers_ssh(
    network_host: Hypervisor, tmp_path: Path
) -> None:
    hv = network_host
    admin = hv.admin
    net = created(admin.post(f"{V2}/networks", json={"network": {"name": "demo-net"}}), "network")["id"]
    subnet = {"subnet": {"network_id": net, "cidr": "10.77.0.0/24", "ip_version": 4}}
    created(admin.post(f"{V2}/subnets", json=subnet), "subnet")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    resp = admin.post(
        f"{COMPUTE}/os-keypairs",
        json={"keypair": {"name": "e2e", "public_key": key.with_suffix(".pub").read_text().strip()}},
    )
    assert resp.status_code in (200, 201), resp.text
    allow_ssh(admin)
    resp = admin.post(
        f"{COMPUTE}/servers",
        json={
            "server": {
                "name": "vm-net",
                "imageRef": hv.image_id,
                "flavorRef": hv.flavor_id,
                "networks": [{"uuid": net}],
                "key_name": "e2e",
            }
        },
    )
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    server = hv.wait_status(server_id, "ACTIVE", timeout=120)
    (address,) = server["addresses"]["demo-net"]
    ip = address["addr"]
    assert address["OS-EXT-IPS:type"] == "fixed"
    assert address["OS-EXT-IPS-MAC:mac_addr"].startswith("fa:16:3e:")

    out = hv.wait_console(server_id, " ssh=", timeout=120)
    marker = next(line for line in out.splitlines() if line.startswith(MARKER))
    assert marker.endswith(f" ip={ip} ssh=up"), out[-3000:]
    assert re.search(rf"KUMO-MD source=\S+ uuid={server_id} ", out), out[-3000:]

    done = subprocess.run(
        ["ip", "netns", "exec", namespace_name(net), "ssh", "-i", str(key), "-o", "BatchMode=yes"]
        + ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        + ["-o", "ConnectTimeout=10", f"root@{ip}", "hostname"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "vm-net"

    assert admin.delete(f"{COMPUTE}/servers/{server_id}").status_code == 204


def _dnsmasq_pids(network_id: str) -> set[int]:
    """The pids of the dnsmasq serving this network (its pid file's path names the network)."""
    found = subprocess.run(["pgrep", "-f", f"dnsmasq.*/{network_id}/pid"], capture_output=True, text=True)
    return {int(pid) for pid in found.stdout.split()}


def test_a_killed_dhcp_server_is_respawned_and_a_guest_booted_after_gets_its_address(
    network_host: Hypervisor,
) -> None:
    hv = network_host
    admin = hv.admin
    net = created(admin.post(f"{V2}/networks", json={"network": {"name": "respawn-net"}}), "network")["id"]
    subnet = {"subnet": {"network_id": net, "cidr": "10.78.0.0/24", "ip_version": 4}}
    created(admin.post(f"{V2}/subnets", json=subnet), "subnet")
    (first,) = wait_for(lambda: _dnsmasq_pids(net), timeout=60)
    subprocess.run(["kill", "-9", str(first)], check=True)
    (second,) = wait_for(lambda: _dnsmasq_pids(net) - {first}, timeout=60)  # the agent's supervision
    assert second != first

    resp = admin.post(
        f"{COMPUTE}/servers",
        json={
            "server": {
                "name": "vm-after-respawn",
                "imageRef": hv.image_id,
                "flavorRef": hv.flavor_id,
                "networks": [{"uuid": net}],
            }
        },
    )
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    server = hv.wait_status(server_id, "ACTIVE", timeout=120)
    (address,) = server["addresses"]["respawn-net"]
    out = hv.wait_console(server_id, " ssh=", timeout=120)
    marker = next(line for line in out.splitlines() if line.startswith(MARKER))
    assert f" ip={address['addr']} " in marker, out[-3000:]  # served by the respawned dnsmasq
    assert _dnsmasq_pids(net) == {second}  # and nothing restarted it again
    assert admin.delete(f"{COMPUTE}/servers/{server_id}").status_code == 204


def test_a_canary_on_a_tenant_network_checks_dhcp_metadata_and_ssh(
    network_host: Hypervisor, tmp_path: Path
) -> None:
    """The health canary against a real guest, as its service user: booted on a tenant network of
    its own project with its key pair and SSH group (made once), its DHCP address, the metadata
    it read (its own uuid and hostname, a key) and a login with the canary's key from the
    network's namespace on this machine (the network host) answering its hostname; then stopped,
    deleted, nothing left."""
    hv = network_host
    ensure_canary_user(hv.admin, "canary-secret")
    token = login(hv.cloud.url, CANARY_USER, "canary-secret", CANARY_PROJECT)
    with httpx.Client(base_url=hv.cloud.url, headers={"X-Auth-Token": token}, timeout=60) as api:
        net = created(api.post(f"{V2}/networks", json={"network": {"name": "canary-net"}}), "network")["id"]
        subnet = {"subnet": {"network_id": net, "cidr": "10.79.0.0/24", "ip_version": 4}}
        created(api.post(f"{V2}/subnets", json=subnet), "subnet")
        spec = resolve_spec(api, hv.image_id, hv.flavor_id, "canary-net", tmp_path / "canary-keys")
        prober = Prober(api, spec)
        report = prober.report(prober.run(AZ, "nova"))
    steps = {s["step"]: s for s in report["steps"]}
    assert report["ok"], (report["failed_step"], report["error"], report["steps"])
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
    assert report["host"] == hv.host
    assert re.fullmatch(
        rf"source=metadata uuid={report['server_id']} hostname=kumo-canary-az-nova\.novalocal keys=1",
        steps["metadata"]["detail"],
    ), steps["metadata"]
    assert re.fullmatch(
        rf"root@10\.79\.0\.\d+ from namespace {namespace_name(net)}: hostname kumo-canary-az-nova",
        steps["ssh"]["detail"],
    ), steps["ssh"]
