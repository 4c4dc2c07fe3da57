"""The real client of the metadata service, driven by the real client of the API: Debian 12's own
cloud-init and openssh-server, in the image scripts/build-cloud-image makes, booted through the
unmodified `openstack` CLI (images, flavor, a generated key pair, a tenant network and subnet, an
SSH rule in the default security group, `server create --key-name --user-data --wait`) onto a
libvirt hypervisor whose agent is also the network host. The test logs in from the network's
namespace with the key pair's private key as cloud-init's default user (`debian`) and checks
`cloud-init status` is done, the hostname is the server's name, the user data ran, the datasource
was OpenStack, and `console log show` has cloud-init's output.

One guest (a systemd + cloud-init boot under TCG: a few minutes on a busy 2-core machine). The
image is built once by scripts/build-cloud-image and cached outside the checkout, keyed by the
script's hash (/var/cache/kumo/cloud-image; KUMO_CLOUD_IMAGE_DIR elsewhere). Runs by default
where the libvirt tests run; KUMO_TEST_CLOUD_IMAGE=0 skips it. On failure the report holds the
guest's console tail and the metadata service's view of the instance.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kumo.agent.network.spec import namespace_name
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.metadata import render
from kumo.metadata.bundle import Bundle
from tests.cli.conftest import DEMO_CLOUD, OpenStackCLI, openstack_binary, write_clouds_yaml
from tests.integration.libvirt.conftest import COMPUTE, ROOT, GuestImage, Hypervisor
from tests.integration.libvirt.test_tenant_network import network_host  # noqa: F401  (the fixture)
from tests.integration.network.conftest import network_ready  # noqa: F401  (the fixture)

USER = "debian"  # cloud-init's default user on Debian; root login is disabled
MARKER_FILE = "/var/tmp/kumo-user-data"
USER_DATA = f"""#cloud-config
runcmd:
  - [sh, -c, 'echo "kumo user data ran on $(hostname)" >{MARKER_FILE}']
"""
BOOT_TIMEOUT = 600.0  # server create to cloud-init done: about 2.5 min here on a loaded 2-core machine


@dataclass(frozen=True)
class CloudImage:
    kernel: Path
    initrd: Path
    disk: Path
    cmdline: str
    manifest: dict[str, str]


@pytest.fixture(scope="session")
def cloud_image(test_image: GuestImage, pytestconfig: pytest.Config) -> CloudImage:
    """The Debian cloud image (built here the first time, with the script's messages shown)."""
    if os.environ.get("KUMO_TEST_CLOUD_IMAGE") == "0":
        pytest.skip("the Debian cloud-init image test is disabled (KUMO_TEST_CLOUD_IMAGE=0)")
    out = Path(os.environ.get("KUMO_CLOUD_IMAGE_DIR", "/var/cache/kumo/cloud-image"))
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    assert capture is not None
    build = subprocess.Popen(
        [str(ROOT / "scripts" / "build-cloud-image"), str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert build.stderr is not None
    said: list[str] = []
    with capture.global_and_fixture_disabled():  # the script's "building…" reaches the terminal
        for line in build.stderr:
            sys.stderr.write(line)
            said.append(line)
    if build.wait() != 0:
        pytest.fail(f"scripts/build-cloud-image failed: {''.join(said[-30:]).strip()}")
    manifest = dict(line.split("=", 1) for line in (out / "manifest").read_text().splitlines() if "=" in line)
    return CloudImage(
        out / "vmlinuz", out / "initrd.img", out / "disk.qcow2", manifest["os_command_line"], manifest
    )


@pytest.fixture
def osc(network_host: Hypervisor, tmp_path: Path) -> OpenStackCLI:  # noqa: F811
    binary = openstack_binary()
    if binary is None:
        pytest.skip("the openstack CLI is not installed")
    return OpenStackCLI(binary, write_clouds_yaml(network_host.cloud, tmp_path / "clouds.yaml"), timeout=300)


def in_namespace(network_id: str, key: Path, address: str, command: str, timeout: float = 60) -> Any:
    """`command` run over SSH as the image's default user, from inside the network's namespace
    (a tenant network is not routed to this host)."""
    ssh = ["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"]
    ssh += ["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]
    return subprocess.run(
        ["ip", "netns", "exec", namespace_name(network_id), *ssh, f"{USER}@{address}", command],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def diagnostics(hv: Hypervisor, name: str, network_id: str, key: Path, address: str) -> str:
    """For a failure report: the guest's console tail, the metadata service's view and, when SSH
    gets in, cloud-init's own account."""
    found = hv.admin.get(f"{COMPUTE}/servers", params={"name": f"^{name}$", "all_tenants": "1"}).json()
    servers = found.get("servers") or []
    if not servers:
        return f"--- no server named {name} ---"
    server_id = str(servers[0]["id"])
    try:
        console = hv.console(server_id, 120)
    except AssertionError as exc:  # no console (the server never got a guest): say so
        console = str(exc)
    out = [f"--- console tail of {name} ({server_id}) ---", console]
    out += ["--- the metadata service's view ---", metadata_view(hv, server_id, network_id, address)]
    if address:
        try:
            inside = in_namespace(
                network_id,
                key,
                address,
                "cloud-init status --long; sudo tail -n 40 /var/log/cloud-init.log",
                30,
            )
            out += ["--- cloud-init in the guest ---", inside.stdout + inside.stderr]
        except subprocess.TimeoutExpired:
            out.append("--- no SSH into the guest ---")
    return "\n".join(out)


def metadata_view(hv: Hypervisor, server_id: str, network_id: str, address: str) -> str:
    """What the metadata service knows of the instance: the source map's entry for the guest's
    address and the bundle the agents read, rendered as the guest gets meta_data.json."""
    lines = []
    network = hv.agent.network
    if network is not None:
        found = network.metadata.sources.lookup(network_id, address) if address else None
        lines.append(f"source map: ({network_id}, {address or '?'}) -> {found}")
    resp = hv.admin.get(
        f"/internal/v1/instances/{server_id}/metadata",
        headers={AGENT_TOKEN_HEADER: hv.cloud.settings.secret("agent_token")},
    )
    lines.append(f"bundle ({resp.status_code}): {resp.text[:3000]}")
    if resp.status_code == 200:
        try:
            bundle = Bundle.model_validate_json(resp.text)
            lines.append(f"meta_data.json: {json.dumps(render.meta_data(bundle))[:3000]}")
            lines.append(f"network_data.json: {json.dumps(render.network_data(bundle))}")
        except Exception as exc:  # noqa: BLE001 — a diagnostic must not hide the failure
            lines.append(f"(not rendered: {exc!r})")
    return "\n".join(lines)


def test_debian_cloud_init_boots_through_the_cli_with_a_key_pair_and_user_data(
    network_host: Hypervisor,  # noqa: F811
    osc: OpenStackCLI,
    cloud_image: CloudImage,
    tmp_path: Path,
) -> None:
    hv = network_host
    # The operator: Debian's kernel, initramfs and root disk as three public images (the disk
    # names the other two and the kernel command line), and a flavor with room for Debian.
    image = ("image", "create", "--public")
    kernel = osc.run(
        *image,
        "--disk-format",
        "aki",
        "--container-format",
        "aki",
        "--file",
        str(cloud_image.kernel),
        "debian-12-kernel",
    )["id"]
    ramdisk = osc.run(
        *image,
        "--disk-format",
        "ari",
        "--container-format",
        "ari",
        "--file",
        str(cloud_image.initrd),
        "debian-12-initrd",
    )["id"]
    osc.run(
        *image,
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "--file",
        str(cloud_image.disk),
        "--property",
        f"kernel_id={kernel}",
        "--property",
        f"ramdisk_id={ramdisk}",
        "--property",
        f"os_command_line={cloud_image.cmdline}",
        "debian-12-cloud",
    )
    osc.run("flavor", "create", "--public", "--vcpus", "1", "--ram", "512", "--disk", "3", "ci.debian")

    # The tenant: a generated key pair, a network, an SSH rule, a server with user data.
    key = tmp_path / "ci-key.pem"
    osc.run("keypair", "create", "--private-key", str(key), "ci-key", cloud=DEMO_CLOUD)
    key.chmod(0o600)
    net = osc.run("network", "create", "ci-net", cloud=DEMO_CLOUD)["id"]
    osc.run(
        "subnet",
        "create",
        "--network",
        "ci-net",
        "--subnet-range",
        "10.78.0.0/24",
        "ci-subnet",
        cloud=DEMO_CLOUD,
    )
    osc.run(
        "security",
        "group",
        "rule",
        "create",
        "--protocol",
        "tcp",
        "--dst-port",
        "22",
        "default",
        cloud=DEMO_CLOUD,
    )
    user_data = tmp_path / "user-data.yaml"
    user_data.write_text(USER_DATA)
    started = time.monotonic()
    address = ""
    try:
        server = osc.run(
            "server",
            "create",
            "--image",
            "debian-12-cloud",
            "--flavor",
            "ci.debian",
            "--network",
            "ci-net",
            "--key-name",
            "ci-key",
            "--user-data",
            str(user_data),
            "--wait",
            "ci-debian",
            cloud=DEMO_CLOUD,
        )
        active = time.monotonic() - started
        assert server["status"] == "ACTIVE", server
        shown = osc.run("server", "show", "ci-debian", cloud=DEMO_CLOUD)
        [address] = shown["addresses"]["ci-net"]  # the CLI shows {network: [address, …]}

        # sshd answers once cloud-init's network stage has put the key in place; until then
        # ssh itself fails (exit 255). `cloud-init status --wait` then holds until the last stage.
        deadline = started + BOOT_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            status = in_namespace(
                net,
                key,
                address,
                "cloud-init status --wait >/dev/null; cloud-init status --long",
                max(left, 30),
            )
            if status.returncode != 255 or left <= 0:
                break
            time.sleep(5)
        done = time.monotonic() - started
        assert status.returncode == 0, f"{status.stdout}{status.stderr}"
        assert "status: done" in status.stdout, status.stdout

        facts = in_namespace(
            net, key, address, f"hostname; cat {MARKER_FILE}; sudo cat /run/cloud-init/instance-data.json"
        )
        assert facts.returncode == 0, facts.stderr
        hostname, ran, instance_data = facts.stdout.split("\n", 2)
        assert hostname == "ci-debian"
        assert ran == "kumo user data ran on ci-debian"
        instance = json.loads(instance_data)
        assert instance["v1"]["platform"] == "openstack", instance["v1"]
        assert instance["v1"]["instance_id"] == server["id"]

        console = osc.run("console", "log", "show", "ci-debian", json=False, cloud=DEMO_CLOUD)
        finished = re.search(r"Cloud-init v\. \S+ finished at .* Up ([0-9.]+) seconds", console)
        assert finished, console[-3000:]
        assert "Datasource DataSourceOpenStackLocal" in finished.group(0), finished.group(0)
        print(
            f"ACTIVE {active:.0f} s, cloud-init done {done:.0f} s after server create "
            f"(the guest's uptime then: {float(finished.group(1)):.0f} s)"
        )
    except BaseException:
        print(diagnostics(hv, "ci-debian", net, key, address))
        raise
    osc.run("server", "delete", "--wait", "ci-debian", json=False, cloud=DEMO_CLOUD)
    assert not hv.driver.instance_dir(server["id"]).exists()
