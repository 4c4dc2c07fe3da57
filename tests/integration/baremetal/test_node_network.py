"""Issue 17's baremetal journey, every part real: a network and subnet made through the Neutron
API and served by a network host agent (kumo's dnsmasq in the network's namespace); a lab
machine (a libvirt domain behind sushy-tools' Redfish emulator) with a NIC on the network's
bridge; the node enrolled with an Ironic port of that NIC's MAC; a server booted on it with
`networks: [{uuid}]`. The machine's console marker shows `ip=<the server port's fixed IP>`:
the real dnsmasq answered the node's MAC with the port's reservation."""

from __future__ import annotations

import random
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from kumo.agent.agent import Agent
from kumo.agent.drivers.fake import FakeDriver
from kumo.agent.netsync import LinuxDataPlane, NetworkSync
from kumo.agent.network.firewall.iptables import IptablesFirewall
from kumo.agent.network.host import NetworkHost
from kumo.agent.network.spec import bridge_name
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.baremetal.conductor import start_conductors, stop_conductors
from kumo.baremetal.lab import Emulator, Nic, define_machines, remove_machine
from kumo.metadata.service import MetadataService
from tests.conftest import Cloud, wait_for
from tests.functional.network.test_api import V2, created
from tests.integration.baremetal.conftest import MARKER, free_port
from tests.integration.libvirt.conftest import GuestImage, upload
from tests.integration.network.conftest import network_ready  # noqa: F401  (the fixture)

pytestmark = pytest.mark.libvirt
IRONIC = {"X-OpenStack-Ironic-API-Version": "1.65"}
RESOURCE_CLASS = "baremetal.net"


@dataclass
class NetworkHostAgent:
    host: NetworkHost
    networks: list[str] = field(default_factory=list)  # what the test made: removed at the end


@pytest.fixture
def network_host(network_ready: None, cloud: Cloud) -> Iterator[NetworkHostAgent]:  # noqa: F811
    """An agent (fake compute driver) that is the network host: kumo's real data plane."""
    try:
        import sushy_tools  # noqa: F401
    except ImportError:
        pytest.skip("sushy-tools is not installed (scripts/sushy-emulator setup)")
    state = Path(tempfile.mkdtemp(prefix="kumo-bmnet-", dir="/var/tmp"))
    state.chmod(0o755)  # dnsmasq reads its hosts directory as nobody
    token = cloud.settings.secret("agent_token")
    net_host = NetworkHost(state, IptablesFirewall())
    metadata = MetadataService.from_api(cloud.url, {AGENT_TOKEN_HEADER: token})
    metadata.start()
    name = f"bmnet-{uuid.uuid4().hex[:6]}"
    agent = Agent(
        cloud.url,
        name,
        FakeDriver(name, vcpus=1, memory_mb=512, disk_gb=1),
        token,
        heartbeat_interval=2.0,
        poll_wait=2.0,
        network=NetworkSync(LinuxDataPlane(net_host), metadata),
    ).start()
    found = NetworkHostAgent(net_host)
    try:
        yield found
    finally:
        agent.stop()
        metadata.stop()
        for network_id in found.networks:
            net_host.remove(network_id)
        shutil.rmtree(state, ignore_errors=True)


def _flavor_and_image(api: httpx.Client) -> tuple[str, str]:
    resp = api.post(
        "/compute/v2.1/flavors", json={"flavor": {"name": "bm.net", "vcpus": 1, "ram": 128, "disk": 1}}
    )
    assert resp.status_code == 200, resp.text
    flavor = str(resp.json()["flavor"]["id"])
    extra = {
        f"resources:CUSTOM_{RESOURCE_CLASS.upper().replace('.', '_')}": "1",
        "resources:VCPU": "0",
        "resources:MEMORY_MB": "0",
        "resources:DISK_GB": "0",
    }
    resp = api.post(f"/compute/v2.1/flavors/{flavor}/os-extra_specs", json={"extra_specs": extra})
    assert resp.status_code == 200, resp.text
    return flavor, upload(api, "bm-net-image", b"\0" * 4096, "raw")


def _node_state(api: httpx.Client, node: str, state: str, timeout: float) -> dict[str, object]:
    def reached() -> dict[str, object] | None:
        shown = api.get(f"/baremetal/v1/nodes/{node}", headers=IRONIC).json()
        return shown if shown["provision_state"] == state else None

    return dict(wait_for(reached, timeout=timeout, interval=0.5))


def test_a_server_on_a_lab_node_gets_its_ports_address_from_the_networks_dnsmasq(
    network_host: NetworkHostAgent, cloud: Cloud, test_image: GuestImage, tmp_path: Path
) -> None:
    api = cloud.client(microversion="2.60")
    net = created(api.post(f"{V2}/networks", json={"network": {"name": "bm-net"}}), "network")["id"]
    network_host.networks.append(net)
    cidr = f"10.{random.randint(100, 199)}.{random.randint(0, 255)}.0/24"
    created(
        api.post(f"{V2}/subnets", json={"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4}}),
        "subnet",
    )
    bridge = bridge_name(net)
    wait_for(lambda: Path(f"/sys/class/net/{bridge}").exists(), timeout=60, interval=0.5)

    mac = "52:54:00:" + ":".join(f"{random.randint(0, 255):02x}" for _ in range(3))
    state = tmp_path / "lab"
    machines = define_machines(["nic-1"], state, test_image.kernel.parent, {"nic-1": [Nic(bridge, mac)]})
    machine = machines[0]
    emulator = Emulator(machines, free_port(), state).start()
    token = cloud.settings.secret("agent_token")
    conductors = start_conductors(
        cloud.url, token, ["cond-net"], heartbeat_interval=0.5, poll_wait=1.0, power_sync_interval=1.0
    )
    try:
        flavor, image = _flavor_and_image(api)
        body = {
            "name": "rack1-nic-1",
            "driver": "redfish",
            "driver_info": machine.driver_info(emulator.url),
            "resource_class": RESOURCE_CLASS,
            "properties": {"cpus": 1, "memory_mb": 128, "local_gb": 1},
        }
        resp = api.post("/baremetal/v1/nodes", json=body, headers=IRONIC)
        assert resp.status_code == 201, resp.text
        node = resp.json()["uuid"]
        resp = api.post("/baremetal/v1/ports", json={"address": mac, "node_uuid": node}, headers=IRONIC)
        assert resp.status_code == 201, resp.text
        for verb, reached in (("manage", "manageable"), ("provide", "available")):
            resp = api.put(
                f"/baremetal/v1/nodes/{node}/states/provision", json={"target": verb}, headers=IRONIC
            )
            assert resp.status_code == 202, resp.text
            _node_state(api, node, reached, timeout=90)

        server = {"name": "metal-net", "flavorRef": flavor, "imageRef": image, "networks": [{"uuid": net}]}
        resp = api.post("/compute/v2.1/servers", json={"server": server})
        assert resp.status_code == 202, resp.text
        sid = resp.json()["server"]["id"]

        def active() -> dict[str, object] | None:
            shown = api.get(f"/compute/v2.1/servers/{sid}").json()["server"]
            assert shown["status"] != "ERROR", shown.get("fault")
            return shown if shown["status"] == "ACTIVE" else None

        wait_for(active, timeout=240, interval=1.0)
        [port] = api.get(f"{V2}/ports", params={"device_id": sid}).json()["ports"]
        assert (port["mac_address"], port["binding:host_id"], port["binding:vnic_type"]) == (
            mac,
            node,
            "baremetal",
        )
        ip = port["fixed_ips"][0]["ip_address"]
        console = Path(machine.console_log).read_text(errors="replace")
        markers = [line for line in console.splitlines() if line.startswith(MARKER)]
        assert markers and f" ip={ip} " in markers[-1], console[-3000:]

        assert api.delete(f"/compute/v2.1/servers/{sid}").status_code == 204
        _node_state(api, node, "available", timeout=120)
        assert api.get(f"{V2}/ports", params={"device_id": sid}).json()["ports"] == []
    finally:
        stop_conductors(conductors)
        emulator.stop()
        remove_machine(machine.domain)
        api.close()
