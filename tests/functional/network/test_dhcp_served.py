"""A guest starts once its network serves its reservation, over the real API and agent protocol:
the long poll `GET /internal/v1/networks/{id}/dhcp-generation` (answers, refusals, how soon it
sees an applied generation: woken by its commit; how few reads a wait costs), and a server
booted through openstacksdk whose agent is also the network host, its data plane held back: the
spawn waits for the sync, bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from kumo.agent import routes as agent_routes
from kumo.agent.agent import Agent
from kumo.agent.drivers.fake import FakeDriver
from kumo.agent.netsync import NetworkSync, PlaneApplied
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.metadata.service import MetadataService
from kumo.network import dhcp
from kumo.network.models import Network
from kumo.runtime import Runtime
from tests.conftest import Cloud
from tests.functional.network.test_api import V2, created
from tests.functional.sdk.test_sdk import IMAGE_DATA, connect, wait_status
from tests.unit.agent.test_netsync import RecordingPlane

pytestmark = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedFieldWarning")


def internal(cloud: Cloud) -> httpx.Client:
    token = cloud.settings.secret("agent_token")
    return httpx.Client(base_url=f"{cloud.url}/internal/v1", headers={AGENT_TOKEN_HEADER: token}, timeout=60)


def network_with_port(cloud: Cloud, cidr: str) -> tuple[str, int]:
    admin = cloud.client()
    net = created(admin.post(f"{V2}/networks", json={"network": {"name": "served"}}), "network")["id"]
    created(admin.post(f"{V2}/subnets", json={"subnet": {"network_id": net, "cidr": cidr}}), "subnet")
    created(admin.post(f"{V2}/ports", json={"port": {"network_id": net}}), "port")
    with cloud.server.rt.db.read() as session:
        return net, session.get_one(Network, net).dhcp_generation


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    cloud: Cloud = request.getfixturevalue("cloud" if request.param == "sqlite" else "pg_cloud")
    return cloud


def test_the_long_poll_answers_once_the_host_applied_the_generation(
    any_cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = any_cloud
    api = internal(cloud)
    reads: list[str] = []
    read = agent_routes._dhcp_served

    def counted(rt: Runtime, network_id: str, generation: int) -> dict[str, Any]:
        reads.append(network_id)
        return read(rt, network_id, generation)

    monkeypatch.setattr(agent_routes, "_dhcp_served", counted)
    # No network agent at all: nothing will ever serve it, nothing to wait for.
    lone, generation = network_with_port(cloud, "10.42.0.0/24")
    found = api.get(f"/networks/{lone}/dhcp-generation", params={"min": generation, "wait": 5}).json()
    assert found["served"] is True and found["host"] is None

    # A network agent that never runs its syncs (registered, no process behind it).
    assert api.put("/network-agents/hv-silent").status_code == 204
    net, generation = network_with_port(cloud, "10.43.0.0/24")
    start = time.monotonic()
    found = api.get(f"/networks/{net}/dhcp-generation", params={"min": generation, "wait": 1}).json()
    assert time.monotonic() - start >= 1.0
    assert found == {
        "network_id": net,
        "generation": generation,
        "host": "hv-silent",
        "applied_generation": -1,
        "served": False,
    }

    # A waiting poll reads the database about once a second, not every 100 ms.
    reads.clear()
    found = api.get(f"/networks/{net}/dhcp-generation", params={"min": generation, "wait": 5}).json()
    assert found["served"] is False and 2 <= len(reads) <= 8, reads
    print(f"\n{len(reads)} reads of the applied generation during a 5 s wait")

    # The host applies it while a poll waits: the commit wakes the poll (its fallback re-read set
    # 10 s apart here, so only the wake-up can answer it this soon).
    monkeypatch.setattr(agent_routes, "DHCP_POLL_STEP_SECONDS", 10.0)
    applied_at: list[float] = []

    def apply_soon() -> None:
        time.sleep(0.5)
        with cloud.server.rt.db.transaction() as session:
            dhcp.record_applied(session, net, "hv-silent", generation)
        applied_at.append(time.monotonic())

    applier = threading.Thread(target=apply_soon)
    applier.start()
    found = api.get(f"/networks/{net}/dhcp-generation", params={"min": generation, "wait": 20}).json()
    answered = time.monotonic()
    applier.join()
    assert found["served"] is True and found["applied_generation"] == generation
    assert answered - applied_at[0] < 2.0
    print(f"\nlong poll answered {1000 * (answered - applied_at[0]):.0f} ms after the generation was applied")
    # An older generation is served too; a later one is not yet.
    assert api.get(f"/networks/{net}/dhcp-generation", params={"min": 0}).json()["served"] is True
    later = api.get(f"/networks/{net}/dhcp-generation", params={"min": generation + 1}).json()
    assert later["served"] is False


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"min": "x"}, 400),
        ({"min": "-1"}, 400),
        ({"min": "99999999999999999999999"}, 400),
        ({"min": "1", "wait": "soon"}, 400),
        ({"min": "1", "wait": "-2"}, 400),
    ],
)
def test_bad_queries_are_refused(any_cloud: Cloud, params: dict[str, str], status: int) -> None:
    cloud = any_cloud
    net, _ = network_with_port(cloud, "10.44.0.0/24")
    assert internal(cloud).get(f"/networks/{net}/dhcp-generation", params=params).status_code == status


def test_an_unknown_network_is_404_and_no_token_401(any_cloud: Cloud) -> None:
    cloud = any_cloud
    missing = internal(cloud).get("/networks/1b6e2c8e-0000-4000-8000-000000000000/dhcp-generation?min=1")
    assert missing.status_code == 404
    assert httpx.get(f"{cloud.url}/internal/v1/networks/x/dhcp-generation?min=1").status_code == 401


class GatedPlane(RecordingPlane):
    """The recording data plane, whose applies wait for `gate`: a busy network host."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def apply(self, state: Mapping[str, Any]) -> PlaneApplied:
        self.gate.wait(60)
        return super().apply(state)


class TimedDriver(FakeDriver):
    def __init__(self, host: str) -> None:
        super().__init__(host)
        self.spawned_at: dict[str, float] = {}

    def spawn(self, instance: dict[str, Any]) -> int:
        self.spawned_at[instance["uuid"]] = time.monotonic()
        return super().spawn(instance)


@pytest.fixture
def gated_host(cloud: Cloud) -> Iterator[tuple[Agent, GatedPlane, TimedDriver]]:
    """One agent that is the hypervisor and the network host (as in `kumo up`)."""
    token = cloud.settings.secret("agent_token")
    plane = GatedPlane()
    driver = TimedDriver("hv-both")
    metadata = MetadataService.from_api(cloud.url, {AGENT_TOKEN_HEADER: token}).start()
    agent = Agent(
        cloud.url, "hv-both", driver, token, poll_wait=1.0, network=NetworkSync(plane, metadata), workers=1
    ).start()
    yield agent, plane, driver
    plane.gate.set()
    agent.stop()
    metadata.stop()


def test_a_spawn_waits_until_its_network_host_applied_its_port(
    cloud: Cloud, gated_host: tuple[Agent, GatedPlane, TimedDriver]
) -> None:
    agent, plane, driver = gated_host
    admin = connect(cloud)
    flavor = admin.compute.create_flavor(name="served.tiny", vcpus=1, ram=256, disk=1)
    image = admin.image.create_image(
        "served-image", data=IMAGE_DATA, disk_format="raw", container_format="bare", visibility="public"
    )
    net = admin.network.create_network(name="gated")
    admin.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.45.0.0/24")
    server = admin.compute.create_server(
        name="waits", flavor_id=flavor.id, image_id=image.id, networks=[{"uuid": net.id}]
    )
    time.sleep(2.0)  # the spawn is on the agent by now, waiting: the network host is held back
    assert server.id not in driver.spawned_at
    plane.gate.set()
    opened = time.monotonic()
    wait_status(admin, server, "ACTIVE")
    waited = driver.spawned_at[server.id] - opened
    assert 0 <= waited < 5.0
    print(f"\nspawn started {1000 * waited:.0f} ms after the network host was let apply")
    with cloud.server.rt.db.read() as session:
        assert (dhcp.applied_generation(session, net.id) or -1) >= 0
    admin.close()


def test_a_spawn_starts_anyway_when_its_network_host_stays_busy(
    cloud: Cloud, gated_host: tuple[Agent, GatedPlane, TimedDriver]
) -> None:
    agent, plane, driver = gated_host
    agent.dhcp_wait_seconds = 1.0
    admin = connect(cloud)
    flavor = admin.compute.create_flavor(name="served.tiny", vcpus=1, ram=256, disk=1)
    image = admin.image.create_image(
        "served-image", data=IMAGE_DATA, disk_format="raw", container_format="bare", visibility="public"
    )
    net = admin.network.create_network(name="busy")
    admin.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.46.0.0/24")
    server = admin.compute.create_server(
        name="anyway", flavor_id=flavor.id, image_id=image.id, networks=[{"uuid": net.id}]
    )
    wait_status(admin, server, "ACTIVE")  # the gate never opened: started after the 1 s budget
    assert server.id in driver.spawned_at and not plane.applied
    admin.close()
