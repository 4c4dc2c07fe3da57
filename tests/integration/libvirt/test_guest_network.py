"""A real guest with a NIC: it gets its address by DHCP, reads its public key from the metadata
service at 169.254.169.254, and the test logs into it over SSH with that key.

The network is the test's own (guestnet.py: bridge, namespace, a throwaway dnsmasq and metadata
server). The guest is spawned by the libvirt driver from a spec carrying the port (the agents'
port contract), so the driver's own bridge check and domain XML are what plug it in.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kumo.agent.drivers.load import load_driver
from tests.conftest import Cloud, wait_for
from tests.integration.libvirt.conftest import MARKER, GuestImage, domain, in_whole_lines, upload
from tests.integration.libvirt.guestnet import GuestNetwork, guest_network, run


@pytest.fixture
def net(tmp_path: Path, test_image: GuestImage) -> Iterator[GuestNetwork]:
    with guest_network(tmp_path / "net") as gn:
        yield gn


def test_guest_gets_its_address_by_dhcp_its_key_from_metadata_and_answers_ssh(
    cloud: Cloud, tmp_path: Path, test_image: GuestImage, net: GuestNetwork
) -> None:
    token = cloud.settings.secret("agent_token")
    driver: Any = load_driver(
        "libvirt", "lv-net", api_url=cloud.url, token=token, state_dir=tmp_path / "host"
    )
    admin = cloud.client()
    server_id = str(uuid.uuid4())
    net.serve_metadata(
        {
            "uuid": server_id,
            "name": "vm1",
            "hostname": "vm1.novalocal",
            "public_keys": {"k1": net.public_key + "\n"},
        }
    )
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
        port = net.port()
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
        members = json.loads(run("ip", "-j", "link", "show", "master", net.bridge))
        assert port["tap"] in {link["ifname"] for link in members}

        out = wait_for(
            lambda: in_whole_lines(text := driver.console_output(instance), MARKER) and text,
            timeout=90,
            interval=0.25,
        )
        ip = net.guest_ip
        assert f"KUMO-NET-OK eth0 {ip}/24 gw={net.prefix}1 mtu=1500" in out, out
        assert f"KUMO-MD source=metadata uuid={server_id} hostname=vm1.novalocal keys=1" in out, out
        marker = next(line for line in out.splitlines() if line.startswith(MARKER))
        assert marker.startswith(f"{MARKER} vm1 vcpus=1 ") and marker.endswith(f" ip={ip} ssh=up"), marker

        # In with the key the guest took from the metadata service; its route to 169.254.169.254
        # came from option 121 (through the namespace's address, not the default gateway).
        done = net.ssh("hostname; ip route; cat /root/.ssh/authorized_keys")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "vm1"
        assert f"169.254.169.254 via {net.prefix}2 dev eth0" in done.stdout
        assert net.public_key in lines
    finally:
        driver.destroy({"uuid": server_id})
        driver.close()
        admin.close()


def test_guest_without_a_nic_reads_its_config_drive(
    cloud: Cloud, tmp_path: Path, test_image: GuestImage
) -> None:
    if shutil.which("genisoimage") is None:
        pytest.skip("genisoimage is not installed (it makes the config drive here)")
    server_id = str(uuid.uuid4())
    tree = tmp_path / "cd" / "openstack" / "latest"
    tree.mkdir(parents=True)
    meta = {
        "uuid": server_id,
        "hostname": "cd1.novalocal",
        "public_keys": {"k": "ssh-ed25519 AAAAC3 cd@test\n"},
    }
    (tree / "meta_data.json").write_text(json.dumps(meta, indent=2))  # multi-line, as a file may be
    iso = tmp_path / "disk.config"
    run("genisoimage", "-quiet", "-R", "-J", "-V", "config-2", "-o", str(iso), str(tmp_path / "cd"))
    token = cloud.settings.secret("agent_token")

    def copied_drive(instance: dict[str, Any], directory: Path) -> Path:
        return Path(shutil.copy(iso, directory / "config.iso"))  # the driver takes none from elsewhere

    driver: Any = load_driver(
        "libvirt",
        "lv-cd",
        api_url=cloud.url,
        token=token,
        state_dir=tmp_path / "host",
        config_drive=copied_drive,
    )
    admin = cloud.client()
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
        instance = {
            "uuid": server_id,
            "hostname": "cd1",
            "image_ref": image,
            "flavor": {"vcpus": 1, "ram": 128, "disk": 1},
        }
        driver.spawn(instance)
        assert "<interface" not in domain(server_id)  # no ports, no NIC
        out = wait_for(
            lambda: in_whole_lines(text := driver.console_output(instance), MARKER) and text,
            timeout=60,
            interval=0.25,
        )
        assert f"KUMO-MD source=config-2 uuid={server_id} hostname=cd1.novalocal keys=1" in out, out
        assert "KUMO-NET-OK" not in out and " ip=none ssh=off" in out
    finally:
        driver.destroy({"uuid": server_id})
        driver.close()
        admin.close()
