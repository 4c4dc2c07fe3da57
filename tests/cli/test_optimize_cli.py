"""`openstack optimize …` (python-watcherclient, unmodified) drives the rebalancer: one walk
over goal list, audit create, actionplan list, actionplan start and action list, against fake
hosts whose steal the agents measure."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from kumo.agent.drivers.fake import FakeDriver
from kumo.db import Database
from kumo.rebalance.models import VmCpuSignal
from tests.cli.conftest import OpenStackCLI
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.test_servers import _create, _server, _wait_status
from tests.functional.helpers import make_flavor, upload_image

pytestmark = pytest.mark.cli
OPT = "/infra-optim/v1"


@pytest.fixture(autouse=True)
def _fast_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rebalancer's loop steps every 0.2 s in the cloud this module starts (autouse: set
    before the cloud fixture reads its settings)."""
    monkeypatch.setenv("KUMO_REBALANCE_LOOP_SECONDS", "0.2")


def _steal_on_source(cloud: Cloud, fleet: Fleet, c: httpx.Client) -> list[str]:
    """Three one-core guests on a 2-core host; an idle 4-core host beside it."""
    for name, cores in (("opt-a", 2.0), ("opt-b", 4.0)):
        driver = FakeDriver(name, vcpus=8, cpu_cores=cores)
        fleet.add(name, driver=driver, cpu_sample_interval=0.05, cpu_report_interval=0.1)
    flavor, image = make_flavor(c, "opt1"), upload_image(c)
    sids = [
        _create(c, flavor, image, availability_zone="nova:opt-a", metadata={"fake_cpu_demand": "1.0"})
        for _ in range(3)
    ]
    for sid in sids:
        _wait_status(c, sid, "ACTIVE")
    db = Database(cloud.settings.resolved_database_url)
    try:

        def armed() -> bool:
            with db.read() as s:
                rows = list(s.scalars(select(VmCpuSignal).where(VmCpuSignal.host == "opt-a")))
            return len(rows) == 3 and all(r.hot_rounds >= 3 for r in rows)

        wait_for(armed)
    finally:
        db.dispose()
    return sids


def test_optimize_walk(osc: OpenStackCLI, cloud: Cloud, fleet: Fleet) -> None:
    with cloud.client() as c:
        sids = _steal_on_source(cloud, fleet, c)
        goals = osc.run("optimize", "goal", "list")
        assert [g["Name"] for g in goals] == ["noisy_neighbor"]

        audit = osc.run("optimize", "audit", "create", "--goal", "noisy_neighbor", "--name", "walk")
        assert audit["State"] in ("PENDING", "SUCCEEDED") and audit["Goal"] == "noisy_neighbor"
        assert audit["Audit Type"] == "ONESHOT" and audit["Auto Trigger"] is False
        wait_for(lambda: c.get(f"{OPT}/audits/{audit['UUID']}").json()["state"] == "SUCCEEDED")
        plans = osc.run("optimize", "actionplan", "list", "--audit", audit["UUID"])
        assert len(plans) == 1 and plans[0]["State"] == "RECOMMENDED"  # the dry run: nothing moved
        plan = plans[0]
        started = osc.run("optimize", "actionplan", "start", plan["UUID"])
        assert started["State"] in ("PENDING", "ONGOING", "SUCCEEDED")
        done = wait_for(
            lambda: (p := c.get(f"{OPT}/action_plans/{plan['UUID']}").json())["state"] == "SUCCEEDED" and p
        )
        assert done["efficacy_indicators"][2] == {**done["efficacy_indicators"][2], "value": 1}
        actions = osc.run("optimize", "action", "list", "--action-plan", plan["UUID"])
        assert [(a["State"], a["Action"]) for a in actions] == [("SUCCEEDED", "migrate")]
        moved = c.get(f"{OPT}/actions/{actions[0]['UUID']}").json()["input_parameters"]["resource_id"]
        assert moved in sids
        assert _server(c, moved)["OS-EXT-SRV-ATTR:host"] == "opt-b"
