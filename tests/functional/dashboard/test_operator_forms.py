"""The operator pages over HTTP (httpx, no browser), on the fake cloud: each operator form
(service toggle, node maintenance and power, plan decision) posted by an admin without its CSRF
token is refused (403) and changes nothing; a rebalancer plan with a move (a hot host, reported
by its agent's CPU signal) as the page reviews it; an admin's server list naming each server's
host and rack, a member's not."""

from __future__ import annotations

import re

from sqlalchemy import select

from kumo.agent.drivers.fake import FakeDriver
from kumo.rebalance.models import VmCpuSignal
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, Cloud, Fleet, wait_for
from tests.functional.baremetal.helpers import IRONIC, enroll
from tests.functional.compute.helpers import database
from tests.functional.compute.test_servers import _create, _wait_status
from tests.functional.dashboard.test_operator_pages import (
    API,
    WATCHER,
    audit_plan,
    browser,
    plan_state,
)
from tests.functional.helpers import make_flavor, upload_image


def test_operator_forms_without_their_csrf_token_are_refused_and_change_nothing(site: Cloud) -> None:
    with site.client() as c:
        c.headers.update(IRONIC)
        node = enroll(c, "bm-1", rack="r3")
    plan = audit_plan(site, "csrf-audit")
    with site.client(microversion="2.53") as admin:
        (h2,) = admin.get(f"{API}/os-services", params={"host": "h2"}).json()["services"]
    forms = {
        f"/dashboard/admin/services/{h2['id']}": {"status": "disabled", "name": "h2", "reason": "forged"},
        f"/dashboard/admin/nodes/{node['uuid']}/maintenance": {"maintenance": "on", "reason": "forged"},
        f"/dashboard/admin/nodes/{node['uuid']}/power": {"target": "on"},
        f"/dashboard/admin/rebalancer/plans/{plan['uuid']}": {"decision": "cancel"},
    }
    with browser(site, "admin", ADMIN_PASSWORD, "admin") as b:
        for path, form in forms.items():
            refused = b.post(path, data=form)  # no csrf_token
            assert refused.status_code == 403, (path, refused.status_code, refused.text[:300])
            forged = b.post(path, data={**form, "csrf_token": "not-the-sessions-token"})
            assert forged.status_code == 403, (path, forged.status_code)
    with site.client(microversion="2.53") as admin:
        (after,) = admin.get(f"{API}/os-services", params={"host": "h2"}).json()["services"]
        assert (after["status"], after["disabled_reason"]) == ("enabled", None)
        admin.headers.update(IRONIC)
        now = admin.get(f"/baremetal/v1/nodes/{node['uuid']}").json()
        assert (now["maintenance"], now["target_power_state"]) == (False, None)
    assert plan_state(site, plan["uuid"]) == "RECOMMENDED"


def test_the_rebalancer_page_reviews_a_plan_that_moves_a_server(cloud: Cloud, fleet: Fleet) -> None:
    # As tests/functional/rebalance: 4 one-core guests on a 2-core host steal; a roomy host beside.
    for name, cores in (("rb-a", 2.0), ("rb-b", 4.0)):
        driver = FakeDriver(name, vcpus=8, cpu_cores=cores)
        fleet.add(name, driver=driver, cpu_sample_interval=0.05, cpu_report_interval=0.1)
    with cloud.client() as c:
        wait_for(lambda: len(c.get(f"{API}/os-hypervisors").json()["hypervisors"]) == 2)
        flavor, image = make_flavor(c, "rb1"), upload_image(c)
        meta = {"fake_cpu_demand": "1.0"}
        sids = [_create(c, flavor, image, availability_zone="nova:rb-a", metadata=meta) for _ in range(4)]
        for sid in sids:
            _wait_status(c, sid, "ACTIVE")
    db = database(cloud)
    try:

        def armed() -> bool:
            with db.read() as s:
                rows = list(s.scalars(select(VmCpuSignal).where(VmCpuSignal.host == "rb-a")))
            return len(rows) == 4 and all(r.hot_rounds >= 3 for r in rows)

        wait_for(armed)
    finally:
        db.dispose()
    plan = audit_plan(cloud, "hot-audit")
    with cloud.client() as c:
        (action,) = c.get(
            "/infra-optim/v1/actions", params={"action_plan_uuid": plan["uuid"]}, headers=WATCHER
        ).json()["actions"]
    moved = action["input_parameters"]["resource_id"]
    with browser(cloud, "admin", ADMIN_PASSWORD, "admin") as b:
        page = b.get("/dashboard/admin/rebalancer").text
    section = re.search(rf'data-plan="{plan["uuid"]}"(.*?)</section>', page, re.S)
    assert section, page
    shown = section.group(1)
    assert f'<tr data-action="{action["uuid"]}"><td><code>{moved}</code></td><td>rb-a → rb-b</td>' in shown
    assert "% steal" in shown and "fewer stolen cores" in shown and "to migrate" in shown
    assert "No migration: nothing to move." not in shown and 'class="approve start-plan"' in shown
    assert re.search(r"\d+(\.\d+)? → \d+(\.\d+)? \(\d+(\.\d+)? % less\)", shown), shown


def test_an_admins_server_list_names_host_and_rack_a_members_does_not(site: Cloud) -> None:
    with site.client() as admin:
        flavor, image = make_flavor(admin, "list.tiny"), upload_image(admin, name="list-img")
        sid = _create(admin, flavor, image, availability_zone="nova:h2")
        _wait_status(admin, sid, "ACTIVE")
    with browser(site, "admin", ADMIN_PASSWORD, "admin") as b:
        page = b.get("/dashboard/servers").text
        rows = b.get("/dashboard/servers/rows").text  # the live refresh shows the same
    assert '<th scope="col">Host</th><th scope="col">Rack</th>' in page
    for text in (page, rows):
        row = re.search(rf'<tr data-server="{sid}">(.*?)</tr>', text, re.S)
        assert row and '<td class="host">h2</td><td class="rack">r2</td>' in row.group(1), text
    with browser(site, "demo", DEMO_PASSWORD, "demo") as b:
        member = b.get("/dashboard/servers").text
    assert '<th scope="col">Host</th>' not in member and "Server group</th>" in member
