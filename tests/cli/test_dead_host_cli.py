"""A hypervisor whose agent died for good, operated with the unmodified `openstack` CLI: force
its service down, reset a server's state, delete one, evacuate the others, then delete the
service."""

from __future__ import annotations

import pytest

from tests.cli.conftest import OpenStackCLI
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.test_dead_host import _boot_on, _host_of, _kill, _usage
from tests.functional.compute.test_servers import _setup

pytestmark = pytest.mark.cli

COMPUTE = ("--os-compute-api-version", "2.64")
API = "/compute/v2.1"


def test_dead_host_through_the_cli(cloud: Cloud, fleet: Fleet, osc: OpenStackCLI) -> None:
    fleet.add("cli-dead")
    with cloud.client(microversion="2.64") as c:
        flavor, image = _setup(c)
        errored, deleted, moved = (_boot_on(c, flavor, image, "cli-dead", name) for name in ("e", "d", "m"))
        fleet.add("cli-live")
        _kill(fleet, "cli-dead")

        osc.run(*COMPUTE, "compute", "service", "set", "--down", "cli-dead", "nova-compute", json=False)
        (service,) = osc.run(*COMPUTE, "compute", "service", "list", "--host", "cli-dead")
        assert (service["State"], service["Binary"]) == ("down", "nova-compute")

        osc.run(*COMPUTE, "server", "set", "--auto-approve", "--state", "error", errored, json=False)
        assert c.get(f"{API}/servers/{errored}").json()["server"]["status"] == "ERROR"

        osc.run(*COMPUTE, "server", "delete", "--wait", deleted, json=False)
        assert c.get(f"{API}/servers/{deleted}").status_code == 404

        for sid in (moved, errored):
            osc.run(*COMPUTE, "server", "evacuate", "--host", "cli-live", sid)
        for sid in (moved, errored):
            server = wait_for(
                lambda sid=sid: (
                    (s := c.get(f"{API}/servers/{sid}").json()["server"])["status"] == "ACTIVE" and s
                )
            )
            assert _host_of(server) == "cli-live"
        assert _usage(c, "cli-dead")["VCPU"] == 0 and _usage(c, "cli-live")["VCPU"] == 4

        osc.run(*COMPUTE, "compute", "service", "delete", service["ID"], json=False)
        assert osc.run(*COMPUTE, "compute", "service", "list", "--host", "cli-dead") == []
        assert (
            c.get("/placement/resource_providers", params={"name": "cli-dead"}).json()["resource_providers"]
            == []
        )
