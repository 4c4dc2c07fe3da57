"""`kumo up` on a machine where libvirt works: its first hypervisor is a real one and the demo
server is a real QEMU guest on the `public` network, whose boot marker `kumo up` reads back
through the API. With the SSH rule the README's journey adds to the default security group (made
here with the `openstack` CLI), the guest answers SSH from this machine's own (root) namespace at
the address `server list` shows; once `kumo up` stops, its gateway and bridge are gone.

On the same boot, its baremetal: four lab machines (libvirt domains) behind sushy-tools' Redfish
emulator, enrolled and available in the background; the CLI lists them with their resource
class and deploys a server of the baremetal flavor on one, whose console (read through the API
from the machine's serial log) shows the deploy; stopping removes the emulator, the domains and
the lab's files."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from kumo.agent.network import links
from kumo.agent.network.spec import bridge_name, host_gateway_name
from kumo.baremetal.lab import lab_id
from tests.cli.test_kumo_up import public_network, random_public_network, up_argv, up_env
from tests.integration.libvirt.conftest import MARKER, GuestImage

OPENSTACK = str(Path(sys.executable).parent / "openstack")


def destroy_demo_server(out: str) -> None:
    # The guest outlives `kumo up` (as a guest should): remove it.
    found = re.search(r"demo-server (\S+) is", out)
    if found:
        for verb in ("destroy", "undefine"):
            subprocess.run(["virsh", "-c", "qemu:///system", verb, found.group(1)], capture_output=True)


def virsh(*argv: str) -> str:
    return subprocess.run(
        ["virsh", "-c", "qemu:///system", *argv], capture_output=True, text=True, timeout=60, check=True
    ).stdout


def ssh_banner(ip: str) -> str:
    """The first line the address's port 22 sends, or "" (nothing listening or reachable yet)."""
    try:
        with socket.create_connection((ip, 22), 3) as sock:
            sock.settimeout(3)
            return sock.recv(256).decode(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return ""


def test_up_boots_a_real_guest_reachable_from_this_machine(tmp_path: Path, test_image: GuestImage) -> None:
    state = tmp_path / "state"
    cidr = random_public_network()
    args = ("--hosts", "2", "--image-dir", str(test_image.kernel.parent), "--public-network", cidr)
    proc = subprocess.Popen(
        up_argv(state, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=up_env(state)
    )
    lines: list[str] = []
    stdout = proc.stdout
    assert stdout is not None

    def read() -> None:
        for line in stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 600
        while not any("Press Ctrl-C" in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.5)
        out = "".join(lines)
        assert "compute-1: libvirt/QEMU: real guests" in out
        assert re.search(r"demo-server \S+ is ACTIVE", out), out
        assert f"{MARKER} demo-server" in out  # read through os-getConsoleOutput
        assert "--flavor r1.tiny --image kumo-test-image --network public --key-name mykey" in out
        network_id, public = public_network(out)
        assert public == cidr and f"gateway {cidr.replace('.0/24', '.1')} on this machine" in out, out

        def openstack(*argv: str, cloud: str = "kumo-demo") -> str:
            env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(state / "clouds.yaml")}
            cmd = [OPENSTACK, "--os-cloud", cloud, *argv]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
            assert done.returncode == 0, done.stderr
            return done.stdout

        # The README's journey: SSH opened in the default group, the address from server list.
        openstack("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "default")
        (server,) = json.loads(openstack("server", "list", "-f", "json"))
        assert server["Name"] == "demo-server" and server["Status"] == "ACTIVE"
        networks = server["Networks"]  # {"public": ["172.24.x.y"]} (older clients: "public=…")
        ip = networks["public"][0] if isinstance(networks, dict) else networks.split("=", 1)[1]
        route = subprocess.run(["ip", "-j", "route", "get", ip], capture_output=True, text=True).stdout
        assert json.loads(route)[0]["dev"] == host_gateway_name(network_id)  # the root namespace's route
        deadline = time.monotonic() + 180  # the guest's SSH server starts after its metadata
        banner = ssh_banner(ip)
        while not banner.startswith("SSH-") and time.monotonic() < deadline:
            time.sleep(2)
            banner = ssh_banner(ip)
        assert banner.startswith("SSH-"), f"{ip}:22 said {banner!r}"
        destroy_demo_server(out)  # its TCG guest done with: the machine's boot below gets the CPU

        # Baremetal beside it: the lab's machines over Redfish, ready in the background.
        assert "baremetal bm-1, bm-2, bm-3, bm-4: Redfish: sushy-tools' emulator over libvirt machines" in out
        assert "--flavor bm.small --image kumo-test-image --nic none --wait my-metal" in out
        deadline = time.monotonic() + 300
        while not any(line.startswith(("baremetal ready:", "baremetal not ready:")) for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.5)
        ready = next(line for line in lines if line.startswith(("baremetal ready:", "baremetal not ready:")))
        assert re.search(
            r"bm-1=available bm-2=available bm-3=available bm-4=available \(rack-1, rack-2;", ready
        )
        fields = ("--fields", "name", "resource_class", "provision_state", "driver_info", "-f", "json")
        nodes = json.loads(openstack("baremetal", "node", "list", *fields, cloud="kumo"))
        assert sorted((n["name"], n["resource_class"], n["provision_state"]) for n in nodes) == [
            (f"bm-{i}", "baremetal.small", "available") for i in range(1, 5)
        ]
        emulator = str(nodes[0]["driver_info"]["redfish_address"])
        create = (
            "--flavor",
            "bm.small",
            "--image",
            "kumo-test-image",
            "--nic",
            "none",
            "--wait",
            "-f",
            "json",
        )
        metal = json.loads(openstack("server", "create", *create, "my-metal"))
        assert metal["status"] == "ACTIVE"
        # Its console, through the API from the machine's serial log, names the machine (SMBIOS).
        console = openstack("console", "log", "show", metal["id"])
        found = re.search(rf"{MARKER} (bm-\d) ", console)
        assert found, console
        lab = state / "bmlab"
        ours = {f"bmlab-{lab_id(lab)}-bm-{i}" for i in range(1, 5)}
        assert lab.is_dir() and ours <= set(virsh("list", "--all", "--name").split())
        assert virsh("domstate", f"bmlab-{lab_id(lab)}-{found.group(1)}").strip() == "running"
        assert httpx.get(f"{emulator}/redfish/v1/Systems", timeout=10).status_code == 200

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, "".join(lines)
        # The machine as kumo up found it: no gateway, no bridge; no lab domain, emulator or file.
        assert not {host_gateway_name(network_id), bridge_name(network_id)} & set(links.links())
        left = set(virsh("list", "--all", "--name").split())
        assert not left & set(ours), left
        assert not lab.exists()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{emulator}/redfish/v1/Systems", timeout=10)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        destroy_demo_server("".join(lines))
