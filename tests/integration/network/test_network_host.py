"""A network host for real: the kumo API (SQLite) and an agent with the Linux data plane. A network,
subnet and ports made through the Neutron API reach the agent as `network_sync`; a client
namespace on the network's bridge gets its port's address by DHCP, and asks
169.254.169.254 for its meta_data.json: the instance's when its port names a server, 404 when not."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kumo.agent.agent import Agent
from kumo.agent.drivers.fake import FakeDriver
from kumo.agent.netsync import LinuxDataPlane, NetworkSync
from kumo.agent.network.firewall.iptables import IptablesFirewall
from kumo.agent.network.host import NetworkHost
from kumo.agent.network.spec import network_from_dhcp_state
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.metadata.service import MetadataService
from kumo.network import dhcp
from kumo.network.models import Network
from tests.conftest import Cloud, wait_for
from tests.functional.metadata.test_metadata_service import _boot
from tests.functional.network.test_api import V2, created
from tests.integration.network.conftest import Client, Lab

META = "http://169.254.169.254/openstack/latest/meta_data.json"


@pytest.fixture
def served(network_ready: None, cloud: Cloud) -> Iterator[Lab]:
    state = Path(tempfile.mkdtemp(prefix="kumo-net-test-", dir="/var/tmp"))
    state.chmod(0o755)  # dnsmasq reads its hosts directory as nobody
    lab = Lab(NetworkHost(state, IptablesFirewall(), log_dhcp=True), state)
    token = cloud.settings.secret("agent_token")
    metadata = MetadataService.from_api(cloud.url, {AGENT_TOKEN_HEADER: token}).start()
    syncer = NetworkSync(LinuxDataPlane(lab.host), metadata)
    agent = Agent(cloud.url, "hv-net", FakeDriver("hv-net"), token, poll_wait=1.0, network=syncer).start()
    try:
        yield lab
    finally:
        agent.stop()
        metadata.stop()
        lab.close()
        shutil.rmtree(state, ignore_errors=True)


def applied(cloud: Cloud, network_id: str) -> bool:
    with cloud.server.rt.db.read() as session:
        current = session.get_one(Network, network_id).dhcp_generation
        return dhcp.applied_generation(session, network_id) == current


def fetch_metadata(client: Client) -> tuple[int, Any]:
    """(status, JSON body or None) of meta_data.json asked from inside the client."""
    code = (
        "import json, urllib.request, urllib.error\n"
        "try:\n"
        f"    r = urllib.request.urlopen({META!r}, timeout=5); print(json.dumps([r.status, json.load(r)]))\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(json.dumps([e.code, None]))\n"
    )
    done = client.exec(sys.executable, "-c", code)
    status, body = json.loads(done.stdout.strip().splitlines()[-1])
    return int(status), body


def test_a_port_made_through_the_api_is_served_dhcp_and_metadata(cloud: Cloud, served: Lab) -> None:
    server_id = _boot(cloud, "md-1")  # a server row is all the metadata backend needs
    admin = cloud.client()
    net = created(admin.post(f"{V2}/networks", json={"network": {"name": "n1"}}), "network")["id"]
    subnet = {"subnet": {"network_id": net, "cidr": "10.66.0.0/24", "ip_version": 4}}
    created(admin.post(f"{V2}/subnets", json=subnet), "subnet")
    ports = [
        created(admin.post(f"{V2}/ports", json={"port": {"network_id": net, **extra}}), "port")
        for extra in ({"device_id": server_id}, {})
    ]
    wait_for(lambda: applied(cloud, net), timeout=30)
    with cloud.server.rt.db.read() as session:
        spec = network_from_dhcp_state(dhcp.dhcp_state(session, net))
    served.networks.append(spec)  # removed with the lab
    dhcp_ip = spec.subnets[0].dhcp_ip

    answers = []
    for port in ports:
        client = served.client(spec, port["mac_address"])
        address = port["fixed_ips"][0]["ip_address"]
        assert client.dhcp() == address
        client.configure(address, 24)
        client.exec("ip", "route", "add", "169.254.169.254/32", "via", dhcp_ip)
        answers.append(fetch_metadata(client))
    (status, body), (unknown_status, _) = answers
    assert status == 200 and body["uuid"] == server_id and body["name"] == "md-1"
    assert unknown_status == 404  # a port that names no server has no metadata
