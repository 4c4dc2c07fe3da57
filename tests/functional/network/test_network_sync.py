"""A network host end to end over the real API and agent protocol, its data plane the recording
fake (the real one is tests/integration/network): networks created through the Neutron API
reach the network host's agent as `network_sync` tasks, it reads `/internal/v1/networks/{id}/dhcp`,
its applied generation is stored, and each port that names an instance is plugged into the
agent's metadata sources."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from kumo.agent.agent import Agent
from kumo.agent.drivers.fake import FakeDriver
from kumo.agent.netsync import NetworkSync
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.metadata.service import MetadataService
from kumo.network import dhcp
from kumo.network.models import Network
from tests.conftest import Cloud, wait_for
from tests.functional.network.test_api import V2, created
from tests.unit.agent.test_netsync import RecordingPlane

DEVICE = "0b7c1a8e-3f55-4f0e-9d8c-1d2e3f4a5b6c"


@pytest.fixture
def network_host(cloud: Cloud) -> Iterator[tuple[Agent, RecordingPlane]]:
    token = cloud.settings.secret("agent_token")
    plane = RecordingPlane()
    metadata = MetadataService.from_api(cloud.url, {AGENT_TOKEN_HEADER: token}).start()
    agent = Agent(
        cloud.url, "hv-net", FakeDriver("hv-net"), token, poll_wait=1.0, network=NetworkSync(plane, metadata)
    ).start()
    yield agent, plane
    agent.stop()
    metadata.stop()


def applied(cloud: Cloud, network_id: str) -> bool:
    """The network host applied the network's current generation."""
    with cloud.server.rt.db.read() as session:
        current = session.get_one(Network, network_id).dhcp_generation
        return dhcp.applied_generation(session, network_id) == current


def test_the_network_host_applies_each_change_and_serves_its_ports_metadata(
    cloud: Cloud, network_host: tuple[Agent, RecordingPlane]
) -> None:
    agent, plane = network_host
    admin = cloud.client()
    net = created(admin.post(f"{V2}/networks", json={"network": {"name": "n1"}}), "network")["id"]
    body = {"subnet": {"network_id": net, "cidr": "10.7.0.0/24", "ip_version": 4}}
    created(admin.post(f"{V2}/subnets", json=body), "subnet")
    port = created(admin.post(f"{V2}/ports", json={"port": {"network_id": net, "device_id": DEVICE}}), "port")
    address = port["fixed_ips"][0]["ip_address"]
    wait_for(lambda: applied(cloud, net), timeout=20)
    assert agent.network is not None
    wait_for(lambda: agent.network is not None and agent.network.metadata.sources.lookup(net, address))
    assert agent.network.metadata.sources.lookup(net, address) == DEVICE
    assert len(plane.sockets) == 1  # the metadata listener of that network

    internal = httpx.get(
        f"{cloud.url}/internal/v1/networks/{net}/dhcp",
        headers={AGENT_TOKEN_HEADER: cloud.settings.secret("agent_token")},
    )
    assert [(h["ip_address"], h["device_id"]) for h in internal.json()["hosts"]] == [(address, DEVICE)]
    assert httpx.get(f"{cloud.url}/internal/v1/networks/{net}/dhcp").status_code == 401

    assert admin.delete(f"{V2}/ports/{port['id']}").status_code == 204
    wait_for(lambda: applied(cloud, net), timeout=20)
    wait_for(lambda: agent.network is not None and not agent.network.metadata.sources.lookup(net, address))

    assert admin.delete(f"{V2}/networks/{net}").status_code == 204
    wait_for(lambda: plane.removed == [net], timeout=20)
