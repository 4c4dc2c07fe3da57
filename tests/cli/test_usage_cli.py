"""The unmodified `openstack` CLI's compute reads: `usage list`, `usage show`, and
`server volume list` of a server without volumes."""

from __future__ import annotations

import datetime as dt

import pytest

from kumo.db import utcnow
from tests.cli.conftest import DEMO_CLOUD, CLIError, OpenStackCLI
from tests.conftest import Cloud
from tests.functional.compute.helpers import add_instance
from tests.functional.compute.test_usage import add_server

pytestmark = pytest.mark.cli


def test_usage_list_and_show(osc: OpenStackCLI, cloud: Cloud) -> None:
    demo = osc.run("project", "show", "demo")["id"]
    two_hours_ago = utcnow() - dt.timedelta(hours=2)
    add_server(cloud, demo, "worker", two_hours_ago, vcpus=2, ram=1024, disk=10)
    add_server(
        cloud, demo, "done", two_hours_ago, two_hours_ago + dt.timedelta(hours=1), vcpus=1, ram=512, disk=1
    )

    # `usage list` asks from 4 weeks ago to tomorrow: as in Nova, a running server is charged to
    # the period's end (2 h + 24 h), a terminated one for the time it ran.
    listed = osc.run("usage", "list")
    (row,) = [r for r in listed if r["Project"] in (demo, "demo")]
    hours = {s["name"]: s["hours"] for s in row["Servers"]}
    assert hours["worker"] == pytest.approx(26, abs=0.05) and hours["done"] == pytest.approx(1, abs=0.01)
    assert float(row["CPU Hours"]) == pytest.approx(2 * 26 + 1 * 1, abs=0.1)
    assert float(row["RAM MB-Hours"]) == pytest.approx(1024 * 26 + 512 * 1, abs=60)
    assert float(row["Disk GB-Hours"]) == pytest.approx(10 * 26 + 1 * 1, abs=0.6)

    shown = osc.run("usage", "show", cloud=DEMO_CLOUD)  # the caller's own project
    assert float(shown["CPU Hours"]) == pytest.approx(53, abs=0.1)
    assert sorted(s["name"] for s in shown["Servers"]) == ["done", "worker"]
    # A project without servers: Nova's empty usage object, shown as empty fields.
    assert osc.run("usage", "show", "--project", "admin")["CPU Hours"] is None

    with pytest.raises(CLIError) as refused:
        osc.run("usage", "list", cloud=DEMO_CLOUD)
    assert "403" in refused.value.stderr or "Policy doesn't allow" in refused.value.stderr


def test_server_volume_list_of_a_server_without_volumes(osc: OpenStackCLI, cloud: Cloud) -> None:
    demo = osc.run("project", "show", "demo")["id"]
    server = add_instance(cloud, None, demo, name="plain")
    assert osc.run("server", "volume", "list", server, cloud=DEMO_CLOUD) == []
