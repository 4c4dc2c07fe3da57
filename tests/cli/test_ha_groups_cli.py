"""HA groups with the unmodified openstack CLI: `server group create --policy … --rule
failure_domain=rack`, servers booted into it with `--hint group=…`, and the soft policy's
breach visible in `server event show`."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumo.compute.server_groups import SPREAD_NOT_HONOURED_EVENT
from tests.cli.conftest import CLIError, OpenStackCLI
from tests.conftest import Cloud, Fleet, wait_for

RACKS = {"h1": "r1", "h2": "r1", "h3": "r2"}


def _boot(osc: OpenStackCLI, group: str, name: str) -> dict[str, object]:
    server = osc.run(
        "server", "create", "--flavor", "ha-flavor", "--image", "ha-image", "--nic", "none",
        "--hint", f"group={group}", "--wait", name,
    )  # fmt: skip
    return dict(server)


def test_rack_groups_through_the_cli(cloud: Cloud, fleet: Fleet, osc: OpenStackCLI, tmp_path: Path) -> None:
    for host, rack in RACKS.items():
        fleet.add(host, rack=rack)
    with cloud.client() as c:
        wait_for(lambda: len(c.get("/compute/v2.1/os-kumo-host-labels").json()["host_labels"]) == 3)
    osc.run("flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "ha-flavor")
    image_file = tmp_path / "img.raw"
    image_file.write_bytes(b"x" * 1024)
    osc.run("image", "create", "--file", str(image_file), "--disk-format", "raw", "ha-image")

    hard = osc.run(
        "server", "group", "create", "--policy", "anti-affinity",
        "--rule", "failure_domain=rack", "--rule", "max_server_per_host=1", "ha-hard",
    )  # fmt: skip
    assert (hard["policy"], hard["rules"]) == (
        "anti-affinity",
        {"failure_domain": "rack", "max_server_per_host": 1},
    )
    first = _boot(osc, hard["id"], "hard-1")
    second = _boot(osc, hard["id"], "hard-2")
    racks = {RACKS[str(s["OS-EXT-SRV-ATTR:host"])] for s in (first, second)}
    assert racks == {"r1", "r2"}
    third = osc.run_openstack(
        "server", "create", "--flavor", "ha-flavor", "--image", "ha-image", "--nic", "none",
        "--hint", f"group={hard['id']}", "-f", "json", "hard-3",
    )  # fmt: skip
    assert "hard-3" in third
    failed = wait_for(lambda: (s := osc.run("server", "show", "hard-3"))["status"] == "ERROR" and s)
    assert "ServerGroupAntiAffinityFilter" in str(failed["fault"])
    assert sorted(osc.run("server", "group", "show", "ha-hard")["members"]) == sorted(
        [str(first["id"]), str(second["id"]), str(failed["id"])]
    )

    with pytest.raises(CLIError, match="'row' is not one of"):  # an unknown domain is Nova's 400
        osc.run_openstack(
            "server", "group", "create", "--policy", "anti-affinity", "--rule", "failure_domain=row", "x"
        )

    soft = osc.run(
        "server",
        "group",
        "create",
        "--policy",
        "soft-anti-affinity",
        "--rule",
        "failure_domain=rack",
        "ha-soft",
    )
    servers = [_boot(osc, soft["id"], f"soft-{n}") for n in range(3)]
    assert all(s["status"] == "ACTIVE" for s in servers)
    last = str(servers[-1]["id"])
    actions = osc.run("server", "event", "list", last)
    events = osc.run("server", "event", "show", last, actions[0]["Request ID"])["events"]
    assert SPREAD_NOT_HONOURED_EVENT in [e["event"] for e in events]
