"""The unmodified `openstack` CLI's day-2 server commands on fake-driver agents, in one walk:
pause/unpause, suspend/resume, rescue/unrescue, resize --wait with confirm and revert,
`server dump create` and `server show --diagnostics`. Setup and waits go through the API
directly (one CLI process costs about a second)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kumo.agent.drivers import fake
from tests.cli.conftest import OpenStackCLI
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.test_servers import _create, _setup

pytestmark = pytest.mark.cli
API = "/compute/v2.1"


def _settled(c: httpx.Client, sid: str, status: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        server = c.get(f"{API}/servers/{sid}").json()["server"]
        assert server["status"] != "ERROR", server.get("fault")
        return server if server["status"] == status and server["OS-EXT-STS:task_state"] is None else None

    return dict(wait_for(reached, timeout=30, interval=0.1))


def test_day2_commands(osc: OpenStackCLI, cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("d2a-cli1")
    fleet.add("d2a-cli2")
    with cloud.client(microversion="2.64") as c:
        flavor, image = _setup(c)
        bigger = c.post(
            f"{API}/flavors", json={"flavor": {"name": "t2", "vcpus": 4, "ram": 2048, "disk": 10}}
        )
        assert bigger.status_code == 200, bigger.text
        sid = _create(c, flavor, image)
        _settled(c, sid, "ACTIVE")

        osc.run("server", "pause", sid, json=False)
        assert _settled(c, sid, "PAUSED")["OS-EXT-STS:power_state"] == 3
        osc.run("server", "unpause", sid, json=False)
        _settled(c, sid, "ACTIVE")

        osc.run("server", "suspend", sid, json=False)
        assert _settled(c, sid, "SUSPENDED")["OS-EXT-STS:vm_state"] == "suspended"
        osc.run("server", "resume", sid, json=False)
        _settled(c, sid, "ACTIVE")

        osc.run("server", "rescue", sid, "--password", "cli-rescue", json=False)
        assert _settled(c, sid, "RESCUE")["OS-EXT-STS:vm_state"] == "rescued"
        assert sid in fake.RESCUED
        osc.run("server", "unrescue", sid, json=False)
        _settled(c, sid, "ACTIVE")

        # resize --wait returns once VERIFY_RESIZE; then revert, resize again, confirm
        osc.run("server", "resize", "--flavor", "t2", "--wait", sid, json=False)
        resized = _settled(c, sid, "VERIFY_RESIZE")
        assert resized["flavor"]["original_name"] == "t2"
        osc.run("server", "resize", "revert", sid, json=False)
        assert _settled(c, sid, "ACTIVE")["flavor"]["original_name"] == "t1"
        osc.run("server", "resize", "--flavor", "t2", sid, json=False)  # --wait polls every 5 s
        _settled(c, sid, "VERIFY_RESIZE")
        osc.run("server", "resize", "confirm", sid, json=False)
        assert _settled(c, sid, "ACTIVE")["flavor"]["original_name"] == "t2"

        nmis = fake.NMIS.get(sid, 0)
        osc.run("server", "dump", "create", sid, json=False)
        wait_for(lambda: fake.NMIS.get(sid, 0) == nmis + 1)

        diagnostics = osc.run("server", "show", "--diagnostics", sid)
        # the fake driver names itself as Nova's fake driver does (2.48's schema allows real drivers)
        assert (diagnostics["driver"], diagnostics["state"], diagnostics["num_cpus"]) == (
            "libvirt",
            "running",
            4,
        )

        listed = c.get(f"{API}/servers/{sid}/os-instance-actions").json()["instanceActions"]
        assert [a["action"] for a in reversed(listed)] == [
            "create",
            "pause",
            "unpause",
            "suspend",
            "resume",
            "rescue",
            "unrescue",
            "resize",
            "revertResize",
            "resize",
            "confirmResize",
            "trigger_crash_dump",
        ]
