"""The real client of the metadata service: Debian 12's own cloud-init, in the image
scripts/build-cloud-image makes, booted by the libvirt driver on a guest network whose
metadata server serves a key pair and user data. The test logs in with the key as cloud-init's
default user and checks cloud-init finished, set the hostname and ran the user data.

Heavy (the image build downloads a few hundred MB; a systemd + cloud-init boot under TCG takes
minutes): runs only with KUMO_TEST_CLOUD_IMAGE=1.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kumo.agent.drivers.load import load_driver
from tests.conftest import Cloud
from tests.integration.libvirt.conftest import ROOT, GuestImage, upload
from tests.integration.libvirt.guestnet import GuestNetwork, guest_network

USER_DATA = """#cloud-config
runcmd:
  - [sh, -c, 'echo "kumo user data ran" >/var/tmp/kumo-user-data']
"""


@pytest.fixture(scope="session")
def cloud_image(test_image: GuestImage) -> dict[str, Path | str]:
    if os.environ.get("KUMO_TEST_CLOUD_IMAGE") != "1":
        pytest.skip("the Debian cloud-init image test is heavy: KUMO_TEST_CLOUD_IMAGE=1 runs it")
    out = Path(os.environ.get("KUMO_CLOUD_IMAGE_DIR", "/var/tmp/kumo-cloud-image"))
    done = subprocess.run(
        [str(ROOT / "scripts" / "build-cloud-image"), str(out)], capture_output=True, text=True, timeout=3600
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/build-cloud-image failed: {done.stderr.strip()[-800:]}")
    manifest = dict(line.split("=", 1) for line in (out / "manifest").read_text().splitlines() if "=" in line)
    return {
        "kernel": out / "vmlinuz",
        "initrd": out / "initrd.img",
        "disk": out / "disk.qcow2",
        "cmdline": manifest["os_command_line"],
    }


@pytest.fixture
def net(tmp_path: Path, cloud_image: dict[str, Path | str]) -> Iterator[GuestNetwork]:
    with guest_network(tmp_path / "net") as gn:
        yield gn


def test_debian_cloud_init_reads_kumo_metadata(
    cloud: Cloud, tmp_path: Path, cloud_image: dict[str, Any], net: GuestNetwork
) -> None:
    token = cloud.settings.secret("agent_token")
    driver: Any = load_driver("libvirt", "lv-ci", api_url=cloud.url, token=token, state_dir=tmp_path / "host")
    admin = cloud.client()
    server_id = str(uuid.uuid4())
    net.serve_metadata(
        {
            "uuid": server_id,
            "name": "ci-vm1",
            "hostname": "ci-vm1.novalocal",
            "launch_index": 0,
            "availability_zone": "nova",
            "project_id": "p",
            "meta": {},
            "public_keys": {"k1": net.public_key + "\n"},
            "keys": [{"name": "k1", "type": "ssh", "data": net.public_key + "\n"}],
        },
        user_data=USER_DATA,
    )
    try:
        kernel = upload(admin, "debian-kernel", cloud_image["kernel"], "aki", "aki")
        ramdisk = upload(admin, "debian-ramdisk", cloud_image["initrd"], "ari", "ari")
        image = upload(
            admin,
            "debian-12-cloud",
            cloud_image["disk"],
            "qcow2",
            kernel_id=kernel,
            ramdisk_id=ramdisk,
            os_command_line=cloud_image["cmdline"],
        )
        instance = {
            "uuid": server_id,
            "name": "ci-vm1",
            "hostname": "ci-vm1",
            "image_ref": image,
            "flavor": {"vcpus": 1, "ram": 1024, "disk": 4},
            "ports": [net.port()],
        }
        started = time.monotonic()
        driver.spawn(instance)
        deadline = started + 900
        while True:  # sshd answers only once cloud-init's network stage has put the key in place
            done = net.ssh(
                "cloud-init status --wait >/dev/null; cloud-init status --long", user="debian", timeout=600
            )
            if done.returncode != 255 or time.monotonic() > deadline:  # 255: ssh's own failure
                break
            time.sleep(5)
        console = driver.console_output(instance, 60)
        assert done.returncode == 0, f"{done.stdout}{done.stderr}\n--- console ---\n{console}"
        assert "status: done" in done.stdout, done.stdout
        print(f"cloud-init done {time.monotonic() - started:.0f} s after spawn")
        assert net.ssh("hostname", user="debian").stdout.strip() == "ci-vm1"
        assert net.ssh("cat /var/tmp/kumo-user-data", user="debian").stdout.strip() == "kumo user data ran"
        datasource = net.ssh("sudo cat /run/cloud-init/instance-data.json", user="debian").stdout
        assert '"platform": "openstack"' in datasource and server_id in datasource
    finally:
        driver.destroy({"uuid": server_id})
        driver.close()
        admin.close()
