"""`kumo stock request|list|show|approve|reject` through the real command, authenticated from
clouds.yaml like the openstack CLI; the result seen with `openstack aggregate show`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import DEMO_CLOUD, OpenStackCLI
from tests.cli.kumo_cli import kumo
from tests.conftest import DEMO_PASSWORD, Cloud, Fleet
from tests.functional.stock.test_stock import stock_cloud


def test_stock_workflow_from_the_command_line(cloud: Cloud, fleet: Fleet, osc: OpenStackCLI) -> None:
    ids = stock_cloud(cloud, fleet, machines=3)
    asked = json.loads(
        kumo(
            osc,
            "stock",
            "request",
            "--flavor",
            "bm.small",
            "--count",
            "2",
            "--reason",
            "kafka",
            "-f",
            "json",
            cloud=DEMO_CLOUD,
        ).stdout
    )
    assert (asked["status"], asked["count"], asked["reason"]) == ("pending", 2, "kafka")
    table = kumo(osc, "stock", "list", cloud=DEMO_CLOUD).stdout
    assert asked["id"] in table and "pending" in table

    denied = kumo(osc, "stock", "approve", asked["id"], cloud=DEMO_CLOUD, check=False)
    assert denied.returncode == 1 and "Error 403" in denied.stderr

    pending = json.loads(
        kumo(osc, "stock", "list", "--all-projects", "--status", "pending", "-f", "json").stdout
    )
    assert [r["id"] for r in pending] == [asked["id"]]
    approved = json.loads(kumo(osc, "stock", "approve", asked["id"], "-f", "json").stdout)
    assert approved["hosts"] == ["m1", "m2"]
    shown = kumo(osc, "stock", "show", asked["id"]).stdout
    assert "approved" in shown and "m1, m2" in shown

    private = osc.run("aggregate", "show", f"bm.small.{ids['demo']}")
    assert sorted(private["hosts"]) == ["m1", "m2"]
    assert private["properties"] == {
        "bm.small": "true",
        "baremetal": "true",
        "filter_flavor_id": ids["flavor"],
        "filter_tenant_id": ids["demo"],
    }
    assert osc.run("aggregate", "show", "bm.small")["hosts"] == ["m3"]

    other = json.loads(
        kumo(
            osc,
            "stock",
            "request",
            "--flavor",
            "bm.small",
            "--count",
            "1",
            "--reason",
            "x",
            "-f",
            "json",
            cloud=DEMO_CLOUD,
        ).stdout
    )
    rejected = json.loads(
        kumo(osc, "stock", "reject", other["id"], "--reason", "no budget", "-f", "json").stdout
    )
    assert (rejected["status"], rejected["decision_reason"]) == ("rejected", "no budget")
    again = kumo(osc, "stock", "approve", other["id"], check=False)
    assert again.returncode == 1 and "already rejected" in again.stderr


def test_stock_cli_authenticates_from_os_environment(cloud: Cloud, osc: OpenStackCLI) -> None:
    """No clouds.yaml: the OS_* variables, as `openstack` reads them."""
    env = {k: v for k, v in osc.env.items() if k != "OS_CLIENT_CONFIG_FILE"}
    env.update(
        {
            "OS_AUTH_URL": f"{cloud.url}/identity",
            "OS_USERNAME": "demo",
            "OS_PASSWORD": DEMO_PASSWORD,
            "OS_PROJECT_NAME": "demo",
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3",
            "OS_REGION_NAME": cloud.settings.region,
        }
    )
    binary = str(Path(sys.executable).parent / "kumo")
    done = subprocess.run(
        [binary, "stock", "list", "-f", "json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
