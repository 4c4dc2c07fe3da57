"""`kumo up`, the all-in-one, as a user runs it: migrate, bootstrap, agents, a demo server, the
next commands; then the unmodified `openstack` CLI against the clouds.yaml it wrote."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kumo.agent.network import links
from kumo.agent.network.spec import bridge_name, host_gateway_name

KUMO = str(Path(sys.executable).parent / "kumo")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def random_public_network() -> str:
    """A /24 for `--public-network` that no concurrent run picks (devstack's 172.24.4.0/24 is the
    default; the tests keep clear of it and of each other)."""
    return f"172.24.{random.randint(100, 250)}.0/24"


def up_argv(state: Path, *args: str) -> list[str]:
    public = [] if "--public-network" in args else ["--public-network", random_public_network()]
    return [KUMO, "up", "--state-dir", str(state), "--port", str(free_port()), *public, *args]


def up_env(state: Path) -> dict[str, str]:
    return {**os.environ, "KUMO_STATE_DIR": str(state), "COLUMNS": "200"}


def run_up(state: Path, *args: str, timeout: float = 300, ok: bool = True) -> str:
    done = subprocess.run(
        up_argv(state, "--exit", *args), capture_output=True, text=True, timeout=timeout, env=up_env(state)
    )
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    return done.stdout + ("" if ok else done.stderr)


def public_network(out: str) -> tuple[str, str]:
    """(id, cidr) of the public network the banner names."""
    found = re.search(r"network public (\S+) \(shared, external\) (\S+):", out)
    assert found, out
    return found.group(2), found.group(1)


def data_plane_here() -> bool:
    return os.geteuid() == 0 and shutil.which("dnsmasq") is not None


def test_up_with_the_fake_driver_boots_the_demo_server(tmp_path: Path) -> None:
    cidr = random_public_network()
    out = run_up(tmp_path / "state", "--driver", "fake", "--hosts", "2", "--public-network", cidr)
    assert "compute-1: fake driver (asked for)" in out
    assert "openstack --os-cloud kumo server list --all-projects" in out
    assert re.search(r"dashboard http://127\.0\.0\.1:\d+/dashboard/ \(sign in as demo", out), out
    clouds = yaml.safe_load((tmp_path / "state" / "clouds.yaml").read_text())
    assert set(clouds["clouds"]) == {"kumo", "kumo-demo"}
    # The demo network, and the demo server on it.
    network_id, public = public_network(out)
    assert public == cidr
    found = re.search(r"demo-server \S+ is ACTIVE in az\d public=(\S+)", out)
    assert found, out
    assert ipaddress.IPv4Address(found.group(1)) in ipaddress.IPv4Network(cidr)
    assert "--image demo-image --network public --wait my-server" in out
    if data_plane_here():  # the network host made its gateway here, and took it away on exit
        assert f"gateway {cidr.replace('.0/24', '.1')} on this machine" in out
        assert not {host_gateway_name(network_id), bridge_name(network_id)} & set(links.links())
    # Up again on the same state: the same network, not a second one.
    again = run_up(tmp_path / "state", "--driver", "fake", "--hosts", "2", "--no-demo")
    assert public_network(again) == (network_id, cidr)


def test_up_refuses_a_public_network_over_a_route_of_this_machine(tmp_path: Path) -> None:
    taken = [r["dst"] for r in json.loads(subprocess.run(
        ["ip", "-j", "-4", "route", "show", "table", "main"], capture_output=True, text=True, check=True
    ).stdout) if "/" in r.get("dst", "") and r.get("dev")]  # fmt: skip
    if not taken:
        pytest.skip("this machine has no subnet route to collide with")
    args = ("--driver", "fake", "--hosts", "1", "--public-network", taken[0])
    out = run_up(tmp_path / "state", *args, ok=False)
    assert f"the public network {taken[0]} overlaps this machine's route(s) {taken[0]} dev" in out
    assert "choose a free subnet with --public-network CIDR" in out


def test_up_says_why_it_falls_back_to_fake(tmp_path: Path) -> None:
    if os.geteuid() == 0 and Path("/var/run/libvirt/libvirt-sock").exists():
        pytest.skip("libvirt is usable here: the fallback is covered by tests/unit/allinone")
    out = run_up(tmp_path / "state", "--hosts", "1")
    assert "falling back to the fake driver" in out and "is ACTIVE" in out
