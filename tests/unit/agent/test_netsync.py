"""The network host's `network_sync` (kumo/agent/netsync.py) with a recording data plane: the
state is applied, metadata is served on the plane's socket (a loopback one here) to the
addresses whose port names an instance, and a network gone is removed; dispatch through the
agent's run_task."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from kumo.agent.agent import run_task
from kumo.agent.drivers.fake import FakeDriver
from kumo.agent.netsync import NetworkSync, PlaneApplied, UnavailableDataPlane
from kumo.agent.network.run import NetworkError
from kumo.agent.protocol import TaskOut
from kumo.metadata.bundle import Bundle
from kumo.metadata.service import MetadataService
from kumo.work.kinds import NetworkSyncPayload, TaskKind
from tests.unit.metadata.builders import UUID, bundle

NET = "5f1c5a52-57a1-4a39-9a3e-6a8f7f2e0c11"


class RecordingPlane:
    """A data plane that records what it is asked and listens on loopback."""

    def __init__(self) -> None:
        self.applied: list[int] = []
        self.removed: list[str] = []
        self.sockets: list[socket.socket] = []
        self.addresses: list[tuple[str, int]] = []

    def apply(self, state: Mapping[str, Any]) -> PlaneApplied:
        self.applied.append(int(state["generation"]))
        return PlaneApplied(int(state["generation"]), bool(state["subnets"]))

    def remove(self, network_id: str) -> None:
        self.removed.append(network_id)

    def metadata_socket(self, network_id: str) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        self.sockets.append(sock)
        self.addresses.append(sock.getsockname())
        return sock

    def supervise_forever(self, stop: threading.Event, interval: float) -> None:
        return None


def state(generation: int, device_id: str = UUID, subnets: bool = True) -> dict[str, Any]:
    host = {"port_id": "p1", "mac_address": "fa:16:3e:00:00:01", "ip_address": "127.0.0.1"}
    return {
        "network_id": NET,
        "generation": generation,
        "subnets": [{"id": "s1", "cidr": "127.0.0.0/8"}] if subnets else [],
        "hosts": [{**host, "subnet_id": "s1", "device_id": device_id}],
    }


@pytest.fixture
def metadata() -> Iterator[MetadataService]:
    async def fetch(uuid: str) -> Bundle | None:
        return bundle() if uuid == UUID else None

    service = MetadataService(fetch, ttl=15).start()
    yield service
    service.stop()


def task(network_id: str = NET) -> TaskOut:
    payload = {"network_id": network_id}
    return TaskOut(id="t1", kind="network_sync", instance_uuid=None, payload=payload, request_id=None)


def meta_data(plane: RecordingPlane) -> int:
    host, port = plane.addresses[0]
    return httpx.get(f"http://{host}:{port}/openstack/latest/meta_data.json", timeout=5).status_code


def test_a_sync_applies_the_state_serves_metadata_and_reports_the_generation(
    metadata: MetadataService,
) -> None:
    plane = RecordingPlane()
    states = {NET: state(3)}
    syncer = NetworkSync(plane, metadata, states.get)
    result = run_task(FakeDriver("hv"), task(), {TaskKind.NETWORK_SYNC: syncer.sync})
    assert (result.ok, result.details) == (True, {"applied_generation": 3})
    assert plane.applied == [3] and len(plane.sockets) == 1
    assert meta_data(plane) == 200  # 127.0.0.1 is the port of instance UUID

    states[NET] = state(4, device_id="")  # the port no longer belongs to an instance
    assert syncer.sync(NetworkSyncPayload(NET)).details == {"applied_generation": 4}
    assert len(plane.sockets) == 1  # one listener per network, kept
    assert meta_data(plane) == 404

    del states[NET]  # the network is gone
    assert syncer.sync(NetworkSyncPayload(NET)).details == {"removed": True}
    assert plane.removed == [NET]
    assert metadata.sources.lookup(NET, "127.0.0.1") is None
    with pytest.raises(httpx.TransportError):  # its listener is closed
        meta_data(plane)


def test_a_network_without_dhcp_gets_no_metadata_listener(metadata: MetadataService) -> None:
    plane = RecordingPlane()
    syncer = NetworkSync(plane, metadata, {NET: state(1, subnets=False)}.get)
    assert syncer.sync(NetworkSyncPayload(NET)).details == {"applied_generation": 1}
    assert plane.sockets == [] and metadata.sources.lookup(NET, "127.0.0.1") is None


def test_a_host_that_cannot_run_networks_fails_the_sync_saying_why(metadata: MetadataService) -> None:
    syncer = NetworkSync(
        UnavailableDataPlane("the network data plane needs root"), metadata, {NET: state(1)}.get
    )
    result = run_task(FakeDriver("hv"), task(), {TaskKind.NETWORK_SYNC: syncer.sync})
    assert (
        not result.ok and result.error == "this host cannot serve networks: the network data plane needs root"
    )


def test_an_agent_that_serves_no_networks_fails_the_sync() -> None:
    result = run_task(FakeDriver("hv"), task())
    assert not result.ok and "no --network-host" in (result.error or "")


def test_remove_all_takes_off_every_network_this_process_applied(metadata: MetadataService) -> None:
    """What `kumo up` does as it stops: every network applied (a failed apply too: it may have
    left part of itself), each once; a network already removed is not removed again."""
    other, gone, failed = (NET[:-1] + str(n) for n in (2, 3, 4))
    states: dict[str, dict[str, Any]] = {
        NET: state(2),
        other: {**state(1, subnets=False), "network_id": other},
        gone: {**state(1, subnets=False), "network_id": gone},
        failed: {**state(1), "network_id": failed, "generation": "not a number"},
    }
    plane = RecordingPlane()
    syncer = NetworkSync(plane, metadata, states.get)
    for network_id in (NET, other, gone):
        assert syncer.sync(NetworkSyncPayload(network_id)).ok
    with pytest.raises(ValueError):
        syncer.sync(NetworkSyncPayload(failed))
    assert syncer.failures == {}  # a malformed state is a bug of the sender's, not this machine's
    del states[gone]
    assert syncer.sync(NetworkSyncPayload(gone)).details == {"removed": True}

    assert syncer.remove_all() == sorted([NET, other, failed])
    assert sorted(plane.removed) == sorted([gone, NET, other, failed])
    assert metadata.sources.lookup(NET, "127.0.0.1") is None
    with pytest.raises(httpx.TransportError):  # NET's metadata listener is closed
        meta_data(plane)
    assert syncer.remove_all() == []


class RefusingPlane(RecordingPlane):
    """Refuses a network's state the first time (as a route conflict would), then applies it."""

    def __init__(self) -> None:
        super().__init__()
        self.refusals = 1

    def apply(self, state: Mapping[str, Any]) -> PlaneApplied:
        if self.refusals:
            self.refusals -= 1
            raise NetworkError("this machine already routes 10.0.0.0/24 dev eth1")
        return super().apply(state)


def test_a_failed_sync_is_remembered_until_one_succeeds(metadata: MetadataService) -> None:
    """What `kumo up` reads to say why its public network is not reachable."""
    syncer = NetworkSync(RefusingPlane(), metadata, {NET: state(1)}.get)
    result = run_task(FakeDriver("hv"), task(), {TaskKind.NETWORK_SYNC: syncer.sync})
    assert not result.ok and result.error == "this machine already routes 10.0.0.0/24 dev eth1"
    assert syncer.failures == {NET: "this machine already routes 10.0.0.0/24 dev eth1"}
    assert syncer.sync(NetworkSyncPayload(NET)).ok
    assert syncer.failures == {}
