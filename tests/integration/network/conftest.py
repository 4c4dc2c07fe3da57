"""The network data plane on this host, no guests: bridges, namespaces, a real dnsmasq per network
and iptables, with client namespaces on veth pairs standing in for guests' taps.

Tests here are marked `network` and skip, saying why, when this machine cannot run them (not root,
tools missing). The session fixture runs scripts/install-network first (as root: it installs the
Debian packages when missing); KUMO_TEST_NETWORK=0 skips them outright.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kumo.agent.network import links
from kumo.agent.network.firewall.iptables import IptablesFirewall
from kumo.agent.network.firewall.select import unusable_reason
from kumo.agent.network.host import NetworkHost
from kumo.agent.network.spec import NetworkSpec, PortFirewall, Reservation, SubnetSpec

ROOT = Path(__file__).resolve().parents[3]
PROBE = ROOT / "bench" / "dhcp_probe.py"
TOOLS = ("ip", "dnsmasq", "dhcp_release", "iptables-restore", "busybox")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "network: bridges, namespaces, dnsmasq and iptables on this host (root)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.network)


def _skip_reason() -> str | None:
    if os.environ.get("KUMO_TEST_NETWORK") == "0":
        return "network data plane tests disabled (KUMO_TEST_NETWORK=0)"
    if os.geteuid() != 0:
        return "network data plane tests need root (namespaces, bridges, iptables)"
    done = subprocess.run(
        [str(ROOT / "scripts" / "install-network")], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        return f"scripts/install-network failed: {(done.stderr or done.stdout).strip()[-400:]}"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    return unusable_reason()


@pytest.fixture(scope="session")
def network_ready() -> Iterator[None]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    yield
    IptablesFirewall().teardown()  # the FORWARD jumps and kumo's chains, iptables and ip6tables


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


def mac_of(n: int) -> str:
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in n.to_bytes(3, "big"))


@dataclass
class Client:
    """A stand-in for a guest: a namespace whose eth0 is a veth plugged into a network's bridge
    as `tap<port[:11]>`, with the port's MAC."""

    name: str
    port_id: str
    mac: str
    tap: str
    ip: str | None = None

    def exec(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["ip", "netns", "exec", self.name, *argv], capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} in {self.name}: {done.stderr.strip()}")
        return done

    def dhcp(self, tries: int = 3) -> str | None:
        """A real DHCP client (busybox udhcpc): the leased address, or None when none came."""
        done = self.exec(
            "busybox",
            "udhcpc",
            "-i",
            "eth0",
            "-n",
            "-q",
            "-f",
            "-t",
            str(tries),
            "-T",
            "1",
            "-s",
            "/bin/true",
            check=False,
            timeout=30,
        )
        found = re.search(r"lease of (\S+) obtained", done.stderr + done.stdout)
        return found.group(1) if found else None

    def offer(self, timeout: float = 2.0, mac: str | None = None) -> tuple[str | None, float]:
        """The prober: (offered address or None, seconds until it came)."""
        done = self.exec(
            sys.executable,
            str(PROBE),
            "--mac",
            mac or self.mac,
            "until-offer",
            "--timeout",
            str(timeout),
            check=False,
        )
        row = json.loads(done.stdout.strip().splitlines()[-1])
        return row["offered"], row["seconds"]

    def configure(self, ip: str, prefixlen: int) -> None:
        self.exec("ip", "addr", "flush", "dev", "eth0")
        self.exec("ip", "addr", "add", f"{ip}/{prefixlen}", "dev", "eth0")
        self.ip = ip

    def connect(self, ip: str, port: int, source: str | None = None) -> bool:
        bind = f", source_address=({source!r}, 0)" if source else ""
        code = f"import socket; socket.create_connection(({ip!r}, {port}), 1.5{bind}).close()"
        return self.exec(sys.executable, "-c", code, check=False).returncode == 0

    def listen(self, port: int) -> subprocess.Popen[str]:
        code = (
            "import socket,sys\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('0.0.0.0', {port})); s.listen(16); print('up', flush=True)\n"
            "while True:\n    c,_=s.accept(); c.close()\n"
        )
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.name, sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        return proc


@dataclass
class Lab:
    host: NetworkHost
    state: Path
    networks: list[NetworkSpec] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def network(self, cidr: str, reservations: int = 0, first: int = 10) -> NetworkSpec:
        """A network with one DHCP subnet (gateway .1, DHCP port .2) and `reservations` hosts
        from `first` on (MACs fa:16:3e:<n>)."""
        net_id = str(uuid.uuid4())
        prefix = ipaddress.IPv4Network(cidr)
        hosts = list(prefix.hosts())
        subnet = SubnetSpec("s-" + net_id[:8], str(prefix), str(hosts[0]), str(hosts[1]))
        spec = NetworkSpec(
            net_id,
            "dhcp" + net_id[4:],
            subnets=(subnet,),
            reservations=tuple(
                Reservation(f"port-{i}", mac_of(i), str(hosts[first + i]), f"host-{i}")
                for i in range(reservations)
            ),
        )
        self.networks.append(spec)
        return spec

    def client(self, spec: NetworkSpec, mac: str) -> Client:
        port_id = uuid.uuid4().hex
        client = Client(f"kumo-t-{port_id[:8]}", port_id, mac, "tap" + port_id[:11])
        sh("ip", "netns", "add", client.name)
        self.clients.append(client)
        # Known to the firewall as a port without port security (as the API lists every bound
        # port): a tap of a kumo bridge the firewall does not know passes nothing.
        self.host.firewall.apply(
            [PortFirewall(port_id, mac, (), port_security_enabled=False, tap=client.tap)]
        )
        sh("ip", "link", "add", client.tap, "type", "veth", "peer", "name", "eth0", "netns", client.name)
        sh("ip", "link", "set", client.tap, "master", spec.bridge, "up")
        client.exec("ip", "link", "set", "eth0", "address", mac, "up")
        client.exec("ip", "link", "set", "lo", "up")
        return client

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        for client in self.clients:
            sh("ip", "link", "del", client.tap, check=False)
            sh("ip", "netns", "del", client.name, check=False)
        self.host.unplug([c.tap for c in self.clients])
        for spec in self.networks:
            self.host.remove(spec.id, spec.dhcp_port_id)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@pytest.fixture
def lab(network_ready: None) -> Iterator[Lab]:
    # dnsmasq reads its hosts directory as user nobody: not under pytest's private (0700) tmp_path.
    state = Path(tempfile.mkdtemp(prefix="kumo-net-test-", dir="/var/tmp"))
    state.chmod(0o755)
    lab = Lab(NetworkHost(state, IptablesFirewall(), log_dhcp=True), state)
    try:
        yield lab
    finally:
        lab.close()
        assert not any(spec.namespace in links.namespaces() for spec in lab.networks)
        shutil.rmtree(state, ignore_errors=True)
