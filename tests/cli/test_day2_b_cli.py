"""One walk of the unmodified `openstack` CLI through day-2 actions part B, on fake-driver
agents: `server image create --wait`, `server shelve`, `server unshelve --wait`,
`server migration list` and `console url show --serial`."""

from __future__ import annotations

import pytest

from tests.cli.conftest import OpenStackCLI
from tests.conftest import Cloud, Fleet
from tests.functional.compute.test_servers import _create, _setup, _wait_status

pytestmark = pytest.mark.cli
API = "/compute/v2.1"


def test_day2_b_walk(osc: OpenStackCLI, cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("cli-d2b-1")
    fleet.add("cli-d2b-2")
    with cloud.client() as c:
        flavor, image = _setup(c)
        sid = _create(c, flavor, image)
        _wait_status(c, sid, "ACTIVE")

        snap = osc.run("server", "image", "create", "--name", "cli-snap", "--wait", sid)
        assert snap["name"] == "cli-snap" and snap["status"] == "active"
        _wait_status(c, sid, "ACTIVE")

        url = osc.run("console", "url", "show", "--serial", sid)
        assert url["type"] == "serial" and url["url"].startswith("ws://") and "token=" in url["url"]

        migrate = {"os-migrateLive": {"host": None, "block_migration": "auto"}}
        assert c.post(f"{API}/servers/{sid}/action", json=migrate).status_code == 202
        _wait_status(c, sid, "ACTIVE")
        (row,) = osc.run("server", "migration", "list", "--server", sid)
        assert row["Status"] == "completed" and row["Type"] == "live-migration"

        osc.run("server", "shelve", sid, json=False)
        _wait_status(c, sid, "SHELVED_OFFLOADED")
        osc.run("server", "unshelve", "--wait", sid, json=False)
        shown = _wait_status(c, sid, "ACTIVE")
        assert shown["OS-EXT-SRV-ATTR:host"] in ("cli-d2b-1", "cli-d2b-2")
