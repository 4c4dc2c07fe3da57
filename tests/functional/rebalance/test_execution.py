"""The rebalancer end to end with fake drivers, through Watcher's API: steal measured by the
agents arms the trigger; a oneshot audit without auto_trigger recommends a plan and moves nothing
(the dry run, an excluded server named with its reason); a drain hook's veto skips the action; an
auto-triggered audit live-migrates the victim through the normal path with the pre- and
post-migrate hooks called in order and signed; a failed migration still calls the post hook,
leaves the server ACTIVE where it was, fails the action and the plan."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kumo.agent.drivers.base import DriverError
from kumo.agent.drivers.fake import FakeDriver
from kumo.rebalance import core
from kumo.rebalance.models import VmCpuSignal
from tests.conftest import Cloud, Fleet, start_cloud, wait_for
from tests.functional.compute.helpers import database
from tests.functional.compute.test_servers import _create, _server, _wait_status
from tests.functional.helpers import make_flavor, upload_image
from tests.functional.rebalance.helpers import OPT, VERSION, HookReceiver


class FailingDriver(FakeDriver):
    """A fake host whose live migrations of the servers in `fail` break mid-way."""

    def __init__(self, host: str, **kw: Any) -> None:
        super().__init__(host, **kw)
        self.fail: set[str] = set()

    def migrate(
        self, instance: dict[str, Any], dest: str, live: bool, target: dict[str, Any] | None = None
    ) -> int:
        if instance["uuid"] in self.fail:
            raise DriverError("connection to the destination lost mid-way")
        return super().migrate(instance, dest, live, target)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def hooked(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Cloud, Fleet, HookReceiver]]:
    """A cloud (SQLite, then PostgreSQL) whose rebalancer calls a local drain hook server."""
    with HookReceiver("s3cret") as hooks:
        monkeypatch.setenv("KUMO_REBALANCE_HOOK_URL", hooks.url)
        monkeypatch.setenv("KUMO_REBALANCE_HOOK_SECRET", hooks.secret)
        monkeypatch.setenv("KUMO_REBALANCE_LOOP_SECONDS", "0.2")
        if request.param == "postgresql":
            cloud = start_cloud(tmp_path, request.getfixturevalue("pg_database_url"))
        else:
            cloud = start_cloud(tmp_path, template=sqlite_template)
        fleet = Fleet(cloud)
        try:
            yield cloud, fleet, hooks
        finally:
            fleet.stop()
            cloud.server.stop()


def _audit(c: httpx.Client, auto_trigger: bool, scope: list[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"audit_type": "ONESHOT", "goal": "noisy_neighbor", "auto_trigger": auto_trigger}
    if scope is not None:
        body["scope"] = scope
    resp = c.post(f"{OPT}/audits", json=body, headers=VERSION)
    assert resp.status_code == 201, resp.text
    assert resp.headers["OpenStack-API-Version"] == "infra-optim 1.5"
    audit = resp.json()
    wait_for(lambda: c.get(f"{OPT}/audits/{audit['uuid']}").json()["state"] == "SUCCEEDED")
    (plan,) = c.get(f"{OPT}/action_plans", params={"audit_uuid": audit["uuid"]}).json()["action_plans"]
    return dict(plan)


def _finished(c: httpx.Client, plan_uuid: str) -> dict[str, Any]:
    return dict(
        wait_for(
            lambda: (
                (p := c.get(f"{OPT}/action_plans/{plan_uuid}").json())["state"] in ("SUCCEEDED", "FAILED")
                and p
            )
        )
    )


def _actions(c: httpx.Client, plan_uuid: str) -> list[dict[str, Any]]:
    return list(c.get(f"{OPT}/actions", params={"action_plan_uuid": plan_uuid}).json()["actions"])


def test_rebalance_dry_run_veto_move_and_failure(hooked: tuple[Cloud, Fleet, HookReceiver]) -> None:
    cloud, fleet, hooks = hooked
    source = FailingDriver("rb-a", vcpus=8, cpu_cores=2.0)  # 4 one-core guests on 2 cores: 52 % steal
    fleet.add("rb-a", driver=source, cpu_sample_interval=0.05, cpu_report_interval=0.1)
    fleet.add(
        "rb-b",
        driver=FakeDriver("rb-b", vcpus=8, cpu_cores=4.0),
        cpu_sample_interval=0.05,
        cpu_report_interval=0.1,
    )
    with cloud.client() as c:
        flavor, image = make_flavor(c, "rb1"), upload_image(c)
        meta = {"fake_cpu_demand": "1.0"}
        sids = [_create(c, flavor, image, availability_zone="nova:rb-a", metadata=meta) for _ in range(4)]
        for sid in sids:
            _wait_status(c, sid, "ACTIVE")
        excluded = sids[0]
        assert (
            c.put(
                f"/compute/v2.1/servers/{excluded}/metadata/kumo:rebalance",
                json={"meta": {"kumo:rebalance": "never"}},
            ).status_code
            == 200
        )
        db = database(cloud)
        try:

            def armed() -> bool:
                with db.read() as s:
                    rows = list(s.scalars(select(VmCpuSignal).where(VmCpuSignal.host == "rb-a")))
                return len(rows) == 4 and all(r.hot_rounds >= 3 for r in rows)

            wait_for(armed)
        finally:
            db.dispose()

        # An audit whose scope leaves the only other host out: nothing to move, and why.
        scoped = _audit(c, False, [{"compute": [{"exclude": [{"compute_nodes": [{"name": "rb-b"}]}]}]}])
        assert _actions(c, scoped["uuid"]) == []
        assert {s["reason"] for s in scoped["skipped"]} == {core.EXCLUDED, core.NO_DESTINATION}

        # Dry run: a RECOMMENDED plan, one move off rb-a (1 outbound per host), reasons for the rest.
        dry = _audit(c, auto_trigger=False)
        assert dry["state"] == "RECOMMENDED"
        indicators = {i["name"]: i["value"] for i in dry["efficacy_indicators"]}
        assert (
            indicators["live_migrations"] == 1
            and indicators["lost_cores_before"] > indicators["lost_cores_after"]
        )
        (action,) = _actions(c, dry["uuid"])
        moved = action["input_parameters"]["resource_id"]
        assert action["state"] == "PENDING" and moved != excluded
        assert action["input_parameters"]["source_node"] == "rb-a"
        assert action["input_parameters"]["destination_node"] == "rb-b"
        reasons = {s["server"]: s["reason"] for s in dry["skipped"]}
        assert reasons[excluded] == core.EXCLUDED
        assert set(reasons.values()) <= {core.EXCLUDED, core.HOST_OUT_BUSY}
        assert hooks.calls == [] and all(_server(c, s)["OS-EXT-SRV-ATTR:host"] == "rb-a" for s in sids)

        # A vetoing pre-migrate hook: the action is SKIPPED with its reason, nothing moves.
        hooks.veto = True
        resp = c.post(f"{OPT}/action_plans/{dry['uuid']}/start", headers=VERSION)
        assert resp.status_code == 202, resp.text
        assert c.post(f"{OPT}/action_plans/{dry['uuid']}/start").status_code == 409  # not RECOMMENDED now
        assert _finished(c, dry["uuid"])["state"] == "SUCCEEDED"
        (vetoed,) = _actions(c, dry["uuid"])
        assert (
            vetoed["state"] == "SKIPPED" and vetoed["status_message"] == "vetoed by drain hook: maintenance"
        )
        assert [call["body"]["event"] for call in hooks.calls] == ["pre-migrate"]
        first = hooks.calls[0]
        signed = first["timestamp"].encode() + b"." + first["raw"]
        assert first["signature"] == "sha256=" + hmac.new(b"s3cret", signed, hashlib.sha256).hexdigest()
        assert first["signed"]
        assert abs(int(first["timestamp"]) - time.time()) < 120
        assert first["body"]["server"]["id"] == moved and first["body"]["source"] == "rb-a"
        assert _server(c, moved)["OS-EXT-SRV-ATTR:host"] == "rb-a"

        # Auto-triggered: the move runs through the normal live migration, hooks before and after.
        hooks.reset()
        plan = _audit(c, auto_trigger=True)
        assert _finished(c, plan["uuid"])["state"] == "SUCCEEDED"
        (done,) = _actions(c, plan["uuid"])
        assert done["state"] == "SUCCEEDED"
        server = done["input_parameters"]["resource_id"]
        shown = _wait_status(c, server, "ACTIVE")
        assert shown["OS-EXT-SRV-ATTR:host"] == "rb-b"
        assert [(h["body"]["event"], h["body"]["server"]["id"]) for h in hooks.calls] == [
            ("pre-migrate", server),
            ("post-migrate", server),
        ]
        assert hooks.calls[1]["body"]["outcome"] == "SUCCEEDED"
        events = c.get(f"/compute/v2.1/servers/{server}/os-instance-actions").json()["instanceActions"]
        assert "live-migration" in [e["action"] for e in events]

        # A migration that fails: post hook anyway, the server ACTIVE on its source, the plan FAILED.
        hooks.reset()
        third = _audit(c, auto_trigger=False)
        (pending,) = _actions(c, third["uuid"])
        victim = pending["input_parameters"]["resource_id"]
        assert victim not in (server, excluded)  # the moved one cools down
        source.fail.add(victim)
        assert c.post(f"{OPT}/action_plans/{third['uuid']}/start").status_code == 202
        assert _finished(c, third["uuid"])["state"] == "FAILED"
        (failed,) = _actions(c, third["uuid"])
        assert failed["state"] == "FAILED" and "failed" in failed["status_message"]
        assert [h["body"]["event"] for h in hooks.calls] == ["pre-migrate", "post-migrate"]
        assert hooks.calls[1]["body"]["outcome"] == "FAILED"
        assert _wait_status(c, victim, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "rb-a"
    metrics = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in httpx.get(f"{cloud.url}/metrics").text.splitlines()
        if line.startswith("kumo_rebalance")
    }
    assert metrics["kumo_rebalance_vetoes_total"] >= 1
    assert metrics['kumo_rebalance_moves_total{state="SUCCEEDED"}'] >= 1
    assert metrics['kumo_rebalance_moves_total{state="FAILED"}'] >= 1
    assert metrics["kumo_rebalance_plans_total"] >= 3
    assert metrics[f'kumo_rebalance_skipped_total{{reason="{core.EXCLUDED}"}}'] >= 1
