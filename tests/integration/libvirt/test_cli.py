"""The unmodified `openstack` CLI boots a real guest and reads its console."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import OpenStackCLI, openstack_binary, write_clouds_yaml
from tests.conftest import wait_for
from tests.integration.libvirt.conftest import MARKER, Hypervisor, in_whole_lines


@pytest.fixture
def osc(hv: Hypervisor, tmp_path: Path) -> OpenStackCLI:
    binary = openstack_binary()
    if binary is None:
        pytest.skip("the openstack CLI is not installed")
    return OpenStackCLI(binary, write_clouds_yaml(hv.cloud, tmp_path / "clouds.yaml"))


def test_server_create_and_console_log_show(hv: Hypervisor, osc: OpenStackCLI) -> None:
    flavor = f"tiny-{hv.host}"
    server = osc.run(
        "server", "create", "--flavor", flavor, "--image", hv.image_id, "--no-network", "--wait", "cli-guest"
    )
    assert server["status"] == "ACTIVE"

    def console() -> str | None:
        out = osc.run("console", "log", "show", "cli-guest", json=False)
        return out if in_whole_lines(out, MARKER) else None

    out = wait_for(console, timeout=90, interval=1.0)
    assert f"{MARKER} cli-guest " in out
    # Nova's tail (the log split at newlines, its last parts): a log ending in a newline has an
    # empty last part, so `--lines 2` is its last line
    last = osc.run("console", "log", "show", "--lines", "2", "cli-guest", json=False)
    assert last.strip() and len(last.strip().splitlines()) <= 2
    osc.run("server", "delete", "--wait", "cli-guest", json=False)
    assert not hv.driver.instance_dir(server["id"]).exists()
