"""The network host's side of `network_sync` (networking notes §3.6): read a network's DHCP state
from the API, converge the data plane onto it, serve its metadata inside its namespace, and
report the generation applied.

The data plane is a small interface (`DataPlane`) so that the sync's control flow runs without
root: `LinuxDataPlane` (kumo/agent/network: bridge, namespace, veth, dnsmasq, and a socket bound
inside the namespace), `UnavailableDataPlane` (this machine cannot: every sync fails with the
reason, logged once at start), and the tests' recording fake.

Metadata: each DHCP host entry with a `device_id` maps (network, address) → instance in the
metadata service's sources, read ahead into its cache; entries gone are removed. A network
gone (the API answers 404) is removed from the data plane and its listener closed."""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kumo.agent.drivers.base import DriverError
from kumo.agent.network.firewall.select import select_firewall
from kumo.agent.network.host import NetworkHost
from kumo.agent.network.run import NetworkError
from kumo.agent.network.spec import METADATA_IP, network_from_dhcp_state
from kumo.agent.protocol import AGENT_TOKEN_HEADER, TaskResult
from kumo.metadata.service import MetadataService
from kumo.network.names import namespace_name
from kumo.work.kinds import NetworkSyncPayload

log = logging.getLogger("kumo.agent.network")
METADATA_PORT = 80
CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class PlaneApplied:
    generation: int
    serves_metadata: bool  # the namespace holds 169.254.169.254 (the network has a DHCP subnet)


class DataPlane(Protocol):
    def apply(self, state: Mapping[str, Any]) -> PlaneApplied:
        """Converge this machine onto the network's DHCP state (idempotent)."""

    def remove(self, network_id: str) -> None:
        """Everything of a network on this machine (idempotent)."""

    def metadata_socket(self, network_id: str) -> socket.socket:
        """A TCP socket listening on the metadata address inside the network's namespace."""

    def supervise_forever(self, stop: threading.Event, interval: float) -> None:
        """Restart whatever died (dnsmasq) until `stop` is set."""


def socket_in_namespace(namespace: str, address: str, port: int) -> socket.socket:
    """A listening TCP socket bound to (address, port) inside network namespace `namespace`.
    A socket keeps the namespace it was made in: it is made on a short-lived thread that
    setns(2) moved into the namespace (Python 3.11 has no os.setns), so no other thread moves."""
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def make() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into {namespace}: {os.strerror(err)}")
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(1024)
            made.append(sock)
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=make, name=f"netns-{namespace[:20]}", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise NetworkError(f"cannot listen on {address}:{port} in {namespace}: {failed[0]}")
    return made[0]


class LinuxDataPlane:
    """The real one: kumo/agent/network's NetworkHost under `state_dir`."""

    def __init__(self, host: NetworkHost) -> None:
        self.host = host

    @classmethod
    def create(cls, state_dir: Path) -> LinuxDataPlane:
        """NetworkError (the reason) when this machine cannot run it: not root, tools missing."""
        if os.geteuid() != 0:
            raise NetworkError("the network data plane needs root")
        return cls(NetworkHost(state_dir, select_firewall()))

    def apply(self, state: Mapping[str, Any]) -> PlaneApplied:
        spec = network_from_dhcp_state(state)
        applied = self.host.reconcile(spec)
        return PlaneApplied(applied.generation, spec.has_dhcp)

    def remove(self, network_id: str) -> None:
        self.host.remove(network_id)

    def metadata_socket(self, network_id: str) -> socket.socket:
        return socket_in_namespace(namespace_name(network_id), METADATA_IP, METADATA_PORT)

    def supervise_forever(self, stop: threading.Event, interval: float) -> None:
        self.host.dnsmasq.supervise_forever(stop, interval)


class UnavailableDataPlane:
    """This machine cannot run networks (`reason`): every sync fails saying so."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def _refuse(self) -> DriverError:
        return DriverError(f"this host cannot serve networks: {self.reason}")

    def apply(self, state: Mapping[str, Any]) -> PlaneApplied:
        raise self._refuse()

    def remove(self, network_id: str) -> None:
        raise self._refuse()

    def metadata_socket(self, network_id: str) -> socket.socket:
        raise self._refuse()

    def supervise_forever(self, stop: threading.Event, interval: float) -> None:
        return None


def data_plane(state_dir: Path) -> DataPlane:
    """The Linux data plane, or (logged once, here) the unavailable one with the reason."""
    try:
        return LinuxDataPlane.create(state_dir)
    except (NetworkError, OSError) as exc:
        log.error("this network host cannot run the data plane; every network sync will fail: %s", exc)
        return UnavailableDataPlane(str(exc))


# Reads a network's DHCP state from the API; None when the network is gone.
StateReader = Callable[[str], Mapping[str, Any] | None]


class NetworkSync:
    """Handles `network_sync` tasks; one per network host agent."""

    def __init__(self, plane: DataPlane, metadata: MetadataService, read_state: StateReader | None = None):
        self.plane = plane
        self.metadata = metadata
        self.read_state = read_state
        self._lock = threading.Lock()
        self._listening: set[str] = set()
        self._plugged: dict[str, dict[str, str]] = {}  # network → address → instance
        self._applied: set[str] = set()  # networks this process has put on this machine
        # network → why its last sync failed on this machine (cleared by one that succeeds)
        self.failures: dict[str, str] = {}

    def sync(self, p: NetworkSyncPayload) -> TaskResult:
        if self.read_state is None:
            raise RuntimeError("NetworkSync has no state reader (the agent sets it)")
        state = self.read_state(p.network_id)
        with self._lock:  # one network at a time: a sync is short, and syncs are rare
            if state is None:
                self._remove(p.network_id)
                return TaskResult(ok=True, details={"removed": True})
            self._applied.add(p.network_id)  # before: a failed apply may leave part of it
            try:
                applied = self.plane.apply(state)
            except DriverError as exc:
                self.failures[p.network_id] = str(exc)
                raise
            self.failures.pop(p.network_id, None)
            if applied.serves_metadata:
                self._listen(p.network_id)
                self._plug(p.network_id, state)
            return TaskResult(ok=True, details={"applied_generation": applied.generation})

    def _listen(self, network_id: str) -> None:
        if network_id in self._listening:
            return
        self.metadata.listen_socket(network_id, self.plane.metadata_socket(network_id))
        self._listening.add(network_id)

    def _plug(self, network_id: str, state: Mapping[str, Any]) -> None:
        wanted = {
            str(h["ip_address"]): str(h["device_id"])
            for h in state.get("hosts") or ()
            if h.get("device_id") and h.get("ip_address")
        }
        have = self._plugged.get(network_id, {})
        for address, instance in have.items():
            if wanted.get(address) != instance:
                self.metadata.sources.remove(network_id, address)
        for address, instance in wanted.items():
            if have.get(address) != instance:
                self.metadata.plug(network_id, address, instance)
        self._plugged[network_id] = wanted

    def remove_all(self) -> list[str]:
        """Takes every network this process applied off this machine (dnsmasq, namespaces,
        bridges, the host's gateways), for a host that stops serving networks for good (`kumo
        up` stopping). An agent that merely restarts keeps them: it adopts them on its next
        start. Returns the networks removed."""
        with self._lock:
            removed = sorted(self._applied)
            for network_id in removed:
                self._remove(network_id)
            return removed

    def _remove(self, network_id: str) -> None:
        self._applied.discard(network_id)
        self.plane.remove(network_id)
        if network_id in self._listening:
            self.metadata.stop_network(network_id)
            self._listening.discard(network_id)
        for address in self._plugged.pop(network_id, {}):
            self.metadata.sources.remove(network_id, address)


def network_role(api_url: str, token: str, state_dir: Path) -> NetworkSync:
    """What `kumo agent --network-host` adds: the data plane (or the reason it cannot run) and
    the metadata service, started, reading bundles with the agent's token."""
    metadata = MetadataService.from_api(api_url, {AGENT_TOKEN_HEADER: token}).start()
    return NetworkSync(data_plane(state_dir), metadata)
