"""A network for real guests, laid out as kumo's data plane lays one out, with throwaway
services: bridge `brq<net[:11]>`, namespace `qdhcp-<net>` joined to it by a veth and holding
the DHCP address (.2) and 169.254.169.254/32, a dnsmasq with one reservation (option 121 routes
the metadata address through the namespace, the rest to .1) and Python's http.server serving
the metadata documents the test writes (`serve_metadata`). Nothing on the host's side has an
address: the tests reach guests from inside the namespace (`ssh`)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kumo.agent.network.firewall.iptables import IptablesFirewall
from kumo.agent.network.firewall.select import unusable_reason
from kumo.agent.network.links import ensure_bridge, remove_links
from kumo.agent.network.spec import PortFirewall


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr.strip()}"
    return done.stdout


@dataclass
class GuestNetwork:
    network_id: str
    bridge: str
    namespace: str
    prefix: str  # "10.253.7."
    guest_mac: str
    key: Path  # a private key; `public_key` is its public half
    docs: Path  # what the metadata server serves
    open_taps: list[str] = field(default_factory=list)  # declared to kumo's firewall, if any

    def declare_open(self, port_id: str, mac: str, tap: str) -> None:
        """This lab has no security groups, but kumo's firewall may be on the host (another
        test's): it drops a `tap…` of a `brq…` bridge no port declared, so declare this one
        open (a port without port security), and take it back when the lab goes."""
        if unusable_reason() is None:
            IptablesFirewall().apply([PortFirewall(port_id, mac, (), port_security_enabled=False, tap=tap)])
            self.open_taps.append(tap)

    @property
    def guest_ip(self) -> str:
        return self.prefix + "10"

    @property
    def public_key(self) -> str:
        return self.key.with_suffix(".pub").read_text().strip()

    def port(self) -> dict[str, Any]:
        """A port for the guest, as the API hands ports to agents (the port contract)."""
        port_id = str(uuid.uuid4())
        self.declare_open(port_id, self.guest_mac, "tap" + port_id[:11])
        return {
            "id": port_id,
            "network_id": self.network_id,
            "mac_address": self.guest_mac,
            "mtu": 1500,
            "fixed_ips": [{"subnet_id": str(uuid.uuid4()), "ip_address": self.guest_ip}],
            "bridge": self.bridge,
            "tap": "tap" + port_id[:11],
        }

    def serve_metadata(self, meta: dict[str, Any], user_data: str | None = None) -> None:
        """The OpenStack tree cloud-init reads: /openstack/ lists `latest` only."""
        latest = self.docs / "openstack" / "latest"
        latest.mkdir(parents=True, exist_ok=True)
        (self.docs / "openstack" / "index.html").write_text("latest\n")
        (latest / "meta_data.json").write_text(json.dumps(meta))
        (latest / "vendor_data.json").write_text("{}")
        if user_data is not None:
            (latest / "user_data").write_text(user_data)

    def ssh(self, command: str, user: str = "root", timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.namespace, "ssh", "-i", str(self.key), "-o", "BatchMode=yes"]
            + ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
            + ["-o", "ConnectTimeout=10", f"{user}@{self.guest_ip}", command],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@contextmanager
def guest_network(directory: Path) -> Iterator[GuestNetwork]:
    for tool in ("dnsmasq", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/install-libvirt installs dnsmasq-base)")
    directory.mkdir(parents=True, exist_ok=True)
    net = str(uuid.uuid4())
    prefix = f"10.253.{random.randint(1, 250)}."
    gn = GuestNetwork(
        network_id=net,
        bridge="brq" + net[:11],
        namespace="qdhcp-" + net,
        prefix=prefix,
        guest_mac="fa:16:3e:" + random.randbytes(3).hex(":"),
        key=directory / "id_ed25519",
        docs=directory / "metadata",
    )
    gn.docs.mkdir()
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kumo-test", "-f", str(gn.key))
    procs: list[subprocess.Popen[bytes]] = []
    root_end, ns_end = "tap" + net[:11], "ns-" + net[:11]
    inside = ("ip", "netns", "exec", gn.namespace)
    ensure_bridge(net, 1500)
    try:
        run("ip", "netns", "add", gn.namespace)
        run("ip", "link", "add", root_end, "type", "veth", "peer", "name", ns_end, "netns", gn.namespace)
        gn.declare_open(net, "fa:16:3e:00:00:02", root_end)
        run("ip", "link", "set", root_end, "master", gn.bridge, "up")
        run(*inside, "ip", "addr", "add", prefix + "2/24", "dev", ns_end)
        run(*inside, "ip", "addr", "add", "169.254.169.254/32", "dev", ns_end)
        run(*inside, "ip", "link", "set", ns_end, "up")
        run(*inside, "ip", "link", "set", "lo", "up")
        dnsmasq = [
            *inside,
            "dnsmasq",
            "--no-daemon",
            "--conf-file=/dev/null",
            "--no-hosts",
            "--no-resolv",
            "--port=0",
            "--user=root",
            "--bind-interfaces",
            f"--interface={ns_end}",
            "--except-interface=lo",
            f"--dhcp-range={prefix}0,static,255.255.255.0,1h",
            f"--dhcp-host={gn.guest_mac},{gn.guest_ip}",
            f"--dhcp-option=121,169.254.169.254/32,{prefix}2,0.0.0.0/0,{prefix}1",
            f"--dhcp-option=option:router,{prefix}1",
            f"--dhcp-leasefile={directory / 'leases'}",
            "--log-dhcp",
            "--log-facility=-",
        ]
        with (directory / "dnsmasq.log").open("wb") as log:
            procs.append(subprocess.Popen(dnsmasq, stdout=log, stderr=subprocess.STDOUT))
        metadata = [*inside, sys.executable, "-m", "http.server", "80", "--bind", "169.254.169.254"]
        with (directory / "metadata.log").open("wb") as log:
            procs.append(subprocess.Popen([*metadata, "--directory", str(gn.docs)], stdout=log, stderr=log))
        yield gn
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        remove_links(net)  # the namespace (with the veth) and the bridge
        if gn.open_taps:
            IptablesFirewall().remove(gn.open_taps)
