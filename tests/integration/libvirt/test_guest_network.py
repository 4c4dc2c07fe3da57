"""A real guest with a NIC: it gets its address by DHCP, reads its public key from the metadata
service at 169.254.169.254, and the test logs into it over SSH with that key.

The network around it is the test's own, laid out as the data plane lays one out (bridge
`brq<net[:11]>`, namespace `qdhcp-<net>` joined to it by a veth, holding the DHCP address and
169.254.169.254/32), with a throwaway dnsmasq (one reservation, option 121 routing the metadata
address through the namespace) and Python's http.server serving a meta_data.json. The guest is
spawned by the libvirt driver from a spec carrying the port (the agents' port contract), so the
driver's own bridge check and domain XML are what plug it in.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kumo.agent.drivers.load import load_driver
from kumo.agent.libvirt.bridges import delete_bridge, ensure_bridge
from tests.conftest import Cloud, wait_for
from tests.integration.libvirt.conftest import MARKER, GuestImage, domain, in_whole_lines, upload


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
    key: Path  # the private key; its public half is in meta_data.json

    @property
    def guest_ip(self) -> str:
        return self.prefix + "10"

    def port(self) -> dict[str, Any]:
        port_id = str(uuid.uuid4())
        return {
            "id": port_id,
            "network_id": self.network_id,
            "mac_address": self.guest_mac,
            "mtu": 1500,
            "fixed_ips": [{"subnet_id": str(uuid.uuid4()), "ip_address": self.guest_ip}],
            "bridge": self.bridge,
            "tap": "tap" + port_id[:11],
        }

    def ssh(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.namespace, "ssh", "-i", str(self.key), "-o", "BatchMode=yes"]
            + ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
            + ["-o", "ConnectTimeout=10", f"root@{self.guest_ip}", command],
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture
def guest_network(tmp_path: Path, test_image: GuestImage) -> Iterator[GuestNetwork]:
    for tool in ("dnsmasq", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/install-libvirt installs dnsmasq-base)")
    net = str(uuid.uuid4())
    prefix = f"10.253.{random.randint(1, 250)}."
    tn = GuestNetwork(
        network_id=net,
        bridge="brq" + net[:11],
        namespace="qdhcp-" + net,
        prefix=prefix,
        guest_mac="fa:16:3e:" + random.randbytes(3).hex(":"),
        key=tmp_path / "id_ed25519",
    )
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kumo-test", "-f", str(tn.key))
    meta = {
        "uuid": "",  # set by the test once it knows the server's
        "hostname": "vm1.novalocal",
        "name": "vm1",
        "public_keys": {"k1": tn.key.with_suffix(".pub").read_text().strip() + "\n"},
    }
    docs = tmp_path / "metadata"
    (docs / "openstack" / "latest").mkdir(parents=True)
    (docs / "openstack" / "latest" / "meta_data.json").write_text(json.dumps(meta))

    procs: list[subprocess.Popen[bytes]] = []
    veth_ns = "ns-" + net[:11]
    ensure_bridge(tn.bridge, 1500)
    try:
        run("ip", "netns", "add", tn.namespace)
        run(
            "ip",
            "link",
            "add",
            "tap" + net[:11],
            "type",
            "veth",
            "peer",
            "name",
            veth_ns,
            "netns",
            tn.namespace,
        )
        run("ip", "link", "set", "tap" + net[:11], "master", tn.bridge, "up")
        inside = ("ip", "netns", "exec", tn.namespace)
        run(*inside, "ip", "addr", "add", prefix + "2/24", "dev", veth_ns)
        run(*inside, "ip", "addr", "add", "169.254.169.254/32", "dev", veth_ns)
        run(*inside, "ip", "link", "set", veth_ns, "up")
        run(*inside, "ip", "link", "set", "lo", "up")
        log = (tmp_path / "dnsmasq.log").open("wb")
        procs.append(
            subprocess.Popen(
                [*inside, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-hosts", "--no-resolv"]
                + [
                    "--port=0",
                    "--user=root",
                    "--bind-interfaces",
                    f"--interface={veth_ns}",
                    "--except-interface=lo",
                ]
                + [
                    f"--dhcp-range={prefix}0,static,255.255.255.0,1h",
                    f"--dhcp-host={tn.guest_mac},{tn.guest_ip}",
                ]
                + [f"--dhcp-leasefile={tmp_path / 'leases'}", "--log-dhcp", "--log-facility=-"]
                + [f"--dhcp-option=121,169.254.169.254/32,{prefix}2,0.0.0.0/0,{prefix}1"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        procs.append(
            subprocess.Popen(
                [*inside, sys.executable, "-m", "http.server", "80", "--bind", "169.254.169.254"]
                + ["--directory", str(docs)],
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / "metadata.log").open("wb"),
            )
        )
        yield tn
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", tn.namespace], capture_output=True)  # takes the veth
        delete_bridge(tn.bridge)


def test_guest_gets_its_address_by_dhcp_its_key_from_metadata_and_answers_ssh(
    cloud: Cloud, tmp_path: Path, test_image: GuestImage, guest_network: GuestNetwork
) -> None:
    token = cloud.settings.secret("agent_token")
    driver: Any = load_driver(
        "libvirt", "lv-net", api_url=cloud.url, token=token, state_dir=tmp_path / "host"
    )
    admin = cloud.client()
    server_id = str(uuid.uuid4())
    meta_file = tmp_path / "metadata" / "openstack" / "latest" / "meta_data.json"
    meta_file.write_text(json.dumps({**json.loads(meta_file.read_text()), "uuid": server_id}))
    try:
        kernel = upload(admin, "k", test_image.kernel, "aki", "aki")
        ramdisk = upload(admin, "r", test_image.initrd, "ari", "ari")
        image = upload(
            admin,
            "img",
            test_image.disk_raw,
            "raw",
            kernel_id=kernel,
            ramdisk_id=ramdisk,
            os_command_line=test_image.cmdline,
        )
        port = guest_network.port()
        instance = {
            "uuid": server_id,
            "name": "vm1",
            "hostname": "vm1",
            "image_ref": image,
            "flavor": {"vcpus": 1, "ram": 128, "disk": 1},
            "ports": [port],
        }
        driver.spawn(instance)

        # Plugged as the port says: its tap, with its MAC, on the network's bridge.
        xml = domain(server_id)
        assert f"<target dev='{port['tap']}'/>" in xml and f"<mac address='{port['mac_address']}'/>" in xml
        members = json.loads(run("ip", "-j", "link", "show", "master", guest_network.bridge))
        assert port["tap"] in {link["ifname"] for link in members}

        out = wait_for(
            lambda: in_whole_lines(text := driver.console_output(instance), MARKER) and text,
            timeout=90,
            interval=0.25,
        )
        ip = guest_network.guest_ip
        assert f"KUMO-NET-OK eth0 {ip}/24 gw={ip.rsplit('.', 1)[0]}.1 mtu=1500" in out, out
        assert f"KUMO-MD source=metadata uuid={server_id} hostname=vm1.novalocal keys=1" in out, out
        marker = next(line for line in out.splitlines() if line.startswith(MARKER))
        assert marker.startswith(f"{MARKER} vm1 vcpus=1 ") and marker.endswith(f" ip={ip} ssh=up"), marker

        # In with the key the guest took from the metadata service; the route to 169.254.169.254
        # came from option 121 (through the namespace, not the default gateway).
        done = guest_network.ssh("hostname; ip route; cat /root/.ssh/authorized_keys")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "vm1"
        assert f"169.254.169.254 via {guest_network.prefix}2 dev eth0" in done.stdout
        assert any(line.startswith("ssh-ed25519 ") and line.endswith(" kumo-test") for line in lines)
    finally:
        driver.destroy({"uuid": server_id})
        driver.close()
        admin.close()
