"""`kumo up`, the all-in-one, as a user runs it: migrate, bootstrap, agents, a demo server, the
next commands; then the unmodified `openstack` CLI against the clouds.yaml it wrote."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import pytest
import yaml

from kumo.agent.network import links
from kumo.agent.network.spec import bridge_name, host_gateway_name

KUMO = str(Path(sys.executable).parent / "kumo")
OPENSTACK = str(Path(sys.executable).parent / "openstack")


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


class RunningUp:
    """`kumo up` running in the background (stopped with Ctrl-C on leaving), its output
    collected line by line, and the `openstack` CLI against the clouds.yaml it wrote."""

    def __init__(self, state: Path, *args: str) -> None:
        self.state = state
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            up_argv(state, *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=up_env(state),
        )
        stdout = self.proc.stdout
        assert stdout is not None
        threading.Thread(target=lambda: self.lines.extend(stdout), daemon=True).start()

    @property
    def out(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> str:
        """The output once a line holds `text`."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None and time.monotonic() < deadline, f"no {text!r}: {self.out}"
            time.sleep(0.2)
        return self.out

    def openstack(self, *argv: str, cloud: str = "kumo-demo") -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.state / "clouds.yaml")
        done = subprocess.run(
            [OPENSTACK, "--os-cloud", cloud, *argv], capture_output=True, text=True, timeout=300, env=env
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def stop(self, timeout: float = 120) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> RunningUp:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


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
    assert "baremetal bm-1, bm-2, bm-3, bm-4: fake BMC driver" in out
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


def test_up_serves_fake_baremetal_nodes_beside_the_hypervisors(tmp_path: Path) -> None:
    """Four nodes of the fake BMC driver, available before the banner; the banner's baremetal
    journey through the CLI: the nodes with their resource class, a server on the baremetal
    flavor ACTIVE on one of them, its console showing the deploy."""
    args = ("--driver", "fake", "--hosts", "1", "--no-demo")
    with RunningUp(tmp_path / "state", *args) as up:
        out = up.wait_for("Press Ctrl-C to stop.", timeout=120)
        assert re.search(r"baremetal ready: bm-1=available .* bm-4=available \(rack-1, rack-2;", out), out
        assert "--flavor bm.small --image demo-image --nic none --wait my-metal" in out
        fields = ("--fields", "uuid", "name", "resource_class", "provision_state", "-f", "json")
        nodes = json.loads(up.openstack("baremetal", "node", "list", *fields, cloud="kumo"))
        assert sorted((n["name"], n["resource_class"], n["provision_state"]) for n in nodes) == [
            (f"bm-{i}", "baremetal.small", "available") for i in range(1, 5)
        ]
        create = ("--flavor", "bm.small", "--image", "demo-image", "--nic", "none", "--wait", "-f", "json")
        server = json.loads(up.openstack("server", "create", *create, "my-metal"))
        assert server["status"] == "ACTIVE"
        # Its console is the machine's: powered on from disk, then the marker naming the node.
        console = up.openstack("console", "log", "show", "my-metal")
        assert "fake firmware: booting from disk" in console
        found = re.search(r"KUMO-BOOT-OK (\S+) boots=1", console)
        assert found and found.group(1) in {n["uuid"] for n in nodes}, console
        assert up.stop() == 0


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
