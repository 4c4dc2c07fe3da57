"""Security groups on real guests, through the API (issue 17's proof): three QEMU guests on a
libvirt hypervisor whose agent is the network host and enforces security groups. Two guests on
one network get their addresses by DHCP and reach each other (the default group admits its own
members), a guest on another network is out of reach, SSH from the network's namespace is
refused by the default group until a tcp/22 rule is added live, and a guest forging a source
address is dropped."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import httpx

from kumo.agent.network.spec import namespace_name
from tests.conftest import wait_for
from tests.functional.network.test_api import V2, created
from tests.integration.libvirt.conftest import COMPUTE, MARKER, Hypervisor
from tests.integration.libvirt.test_tenant_network import allow_ssh, network_host  # noqa: F401
from tests.integration.network.conftest import network_ready  # noqa: F401  (the fixture)


def network(admin: httpx.Client, name: str, cidr: str) -> str:
    net = created(admin.post(f"{V2}/networks", json={"network": {"name": name}}), "network")["id"]
    created(
        admin.post(f"{V2}/subnets", json={"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4}}),
        "subnet",
    )
    return str(net)


def boot(hv: Hypervisor, name: str, net: str) -> str:
    body = {
        "server": {
            "name": name,
            "imageRef": hv.image_id,
            "flavorRef": hv.flavor_id,
            "networks": [{"uuid": net}],
            "key_name": "sg",
        }
    }
    resp = hv.admin.post(f"{COMPUTE}/servers", json=body)
    assert resp.status_code == 202, resp.text
    server_id = str(resp.json()["server"]["id"])
    hv.servers.append(server_id)
    return server_id


def ports_of(admin: httpx.Client, server_id: str) -> list[dict[str, Any]]:
    resp = admin.get(f"{V2}/ports", params={"device_id": server_id})
    assert resp.status_code == 200, resp.text
    ports: list[dict[str, Any]] = resp.json()["ports"]
    return ports


def ssh(
    namespace: str, key: Path, ip: str, command: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", namespace, "ssh", "-i", str(key), "-o", "BatchMode=yes"]
        + ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        + ["-o", "ConnectTimeout=5", f"root@{ip}", command],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_security_groups_filter_real_guests_and_change_live(
    network_host: Hypervisor,  # noqa: F811
    tmp_path: Path,
) -> None:
    hv = network_host
    admin = hv.admin
    blue = network(admin, "sg-blue", "10.78.0.0/24")
    green = network(admin, "sg-green", "10.79.0.0/24")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pub = key.with_suffix(".pub").read_text().strip()
    resp = admin.post(f"{COMPUTE}/os-keypairs", json={"keypair": {"name": "sg", "public_key": pub}})
    assert resp.status_code in (200, 201), resp.text

    a, b, c = boot(hv, "sg-a", blue), boot(hv, "sg-b", blue), boot(hv, "sg-c", green)
    ips: dict[str, str] = {}
    consoles: dict[str, str] = {}
    for server_id, net_name in ((a, "sg-blue"), (b, "sg-blue"), (c, "sg-green")):
        server = hv.wait_status(server_id, "ACTIVE", timeout=300)
        (address,) = server["addresses"][net_name]
        ips[server_id] = address["addr"]
    for server_id in (a, b, c):
        consoles[server_id] = hv.wait_console(server_id, " ssh=", timeout=300)
        marker = next(line for line in consoles[server_id].splitlines() if line.startswith(MARKER))
        # DHCP and metadata pass the default group (the key came from 169.254.169.254).
        assert marker.endswith(f" ip={ips[server_id]} ssh=up"), consoles[server_id][-3000:]
        assert re.search(rf"KUMO-MD source=metadata uuid={server_id} .* keys=1", consoles[server_id])
    taps = {"tap" + port["id"][:11] for server_id in (a, b, c) for port in ports_of(admin, server_id)}
    assert taps <= hv.agent.firewall.firewall.taps()  # each guest's ports filtered from its start
    iface = re.search(r"KUMO-NET-OK (\S+) ", consoles[a])
    assert iface is not None
    ns_blue = namespace_name(blue)

    # The default group admits its members only: the namespace's SSH is refused ...
    refused = ssh(ns_blue, key, ips[a], "true", timeout=30)
    assert refused.returncode != 0
    # ... until a tcp/22 rule is added, live: no restart of anything.
    rule_id = allow_ssh(admin)
    wait_for(lambda: ssh(ns_blue, key, ips[a], "true").returncode == 0, timeout=60, interval=0.2)

    # From guest A: B (same network, same group) answers; C (another network) does not.
    def ping(target: str, source: str | None = None) -> bool:
        flag = f"-I {source} " if source else ""
        done = ssh(ns_blue, key, ips[a], f"ping -c 2 -W 2 {flag}{target}")
        return done.returncode == 0

    assert ping(ips[b])
    assert not ping(ips[c])
    # A forged source address is dropped by anti-spoofing, even towards a group member.
    forged = "10.78.0.250"
    added = ssh(ns_blue, key, ips[a], f"ip addr add {forged}/24 dev {iface.group(1)}")
    assert added.returncode == 0, added.stderr
    assert not ping(ips[b], source=forged)
    assert ping(ips[b], source=ips[a])

    # The rule removed: SSH is refused again (new connections; the rules change live).
    assert admin.delete(f"{V2}/security-group-rules/{rule_id}").status_code == 204
    wait_for(lambda: ssh(ns_blue, key, ips[a], "true", timeout=30).returncode != 0, timeout=60, interval=1.0)

    # Deleted guests leave no rules behind.
    for server_id in (a, b, c):
        assert admin.delete(f"{COMPUTE}/servers/{server_id}").status_code == 204
    wait_for(lambda: not (taps & hv.agent.firewall.firewall.taps()), timeout=120, interval=1.0)
