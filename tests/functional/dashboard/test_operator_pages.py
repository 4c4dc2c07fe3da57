"""The dashboard's operator pages over HTTP (httpx, no browser), against one in-process API with
fake-driver agents: canary results with their steps' request ids and the hosts' verdicts; the
rebalancer's audits and plans, a plan started and a refused second start shown in Watcher's
words; a compute service disabled with a reason and enabled again; a baremetal node's
maintenance on and off and its power, a refused power change shown in Ironic's words; the
charts (capacity, steal, boot latency from /metrics); and a member refused on every one of them."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from kumo.agent.protocol import AGENT_TOKEN_HEADER
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, Cloud, Fleet, wait_for
from tests.functional.baremetal.helpers import IRONIC, enroll
from tests.functional.helpers import make_flavor, upload_image

API = "/compute/v2.1"
OPT = "/infra-optim/v1"
WATCHER = {"OpenStack-API-Version": "infra-optim 1.5"}


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def flash_of(page: str) -> str:
    found = re.search(r'id="flash">([^<]*)<', page)
    assert found is not None, page
    return html.unescape(found.group(1))


@contextmanager
def browser(cloud: Cloud, user: str, password: str, project: str) -> Iterator[httpx.Client]:
    """A signed-in dashboard session (its cookie kept by the client)."""
    with httpx.Client(base_url=cloud.url, follow_redirects=True, timeout=30) as b:
        yield _signed_in(b, user, password, project)


def _signed_in(b: httpx.Client, user: str, password: str, project: str) -> httpx.Client:
    creds = {"username": user, "password": password, "project": project}
    signed_in = b.post(
        "/dashboard/login", data={**creds, "csrf_token": csrf_of(b.get("/dashboard/login").text)}
    )
    assert signed_in.status_code == 200 and str(signed_in.url).endswith("/dashboard/servers"), signed_in.text
    return b


def post(b: httpx.Client, page: str, action: str, form: dict[str, str]) -> str:
    """Post a form of `page` (with that page's CSRF token) and return the page it led to."""
    token = csrf_of(b.get(page).text)
    resp = b.post(action, data={**form, "csrf_token": token})
    assert resp.status_code == 200, resp.text
    return resp.text


@pytest.fixture
def site(cloud: Cloud, fleet: Fleet) -> Iterator[Cloud]:
    fleet.add("h1", rack="r1")
    fleet.add("h2", rack="r2")
    with cloud.client() as admin:
        wait_for(lambda: len(admin.get(f"{API}/os-hypervisors").json()["hypervisors"]) == 2)
    yield cloud


def canary(host: str, ok: bool, server_id: str) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat()
    steps = [{"step": "create", "ok": True, "request_id": f"req-create-{host}", "seconds": 0.2}]
    if not ok:
        steps.append({"step": "active", "ok": False, "request_id": f"req-active-{host}", "detail": "ERROR"})
    return {
        "canary": {
            "scope": "host",
            "target": host,
            "availability_zone": "nova",
            "host": host,
            "ok": ok,
            "failed_step": None if ok else "active",
            "error": None if ok else "the server went to ERROR",
            "steps": steps,
            "server_id": server_id,
            "started_at": now,
            "finished_at": now,
        }
    }


def test_canary_page_shows_runs_steps_and_verdicts(site: Cloud) -> None:
    with site.client() as admin:
        for _ in range(3):  # three failures in a row: h1 is disabled with reason canary
            sent = admin.post(
                f"{API}/os-kumo-canaries", json=canary("h1", False, "0" * 8 + "-0000-4000-8000-" + "0" * 12)
            )
            assert sent.status_code == 201, sent.text
        assert admin.post(f"{API}/os-kumo-canaries", json=canary("h2", True, None)).status_code == 201
    with browser(site, "admin", ADMIN_PASSWORD, "admin") as b:
        page = b.get("/dashboard/admin/canaries")
    assert page.status_code == 200, page.text
    text = page.text
    h1 = re.search(r'<tr data-host="h1">(.*?)</tr>', text, re.S)
    h2 = re.search(r'<tr data-host="h2">(.*?)</tr>', text, re.S)
    assert h1 and "failing (disabled, reason canary)" in h1.group(1) and "disabled: canary" in h1.group(1)
    assert h2 and "healthy" in h2.group(1)
    assert "req-active-h1" in text and "req-create-h2" in text  # each step's request id, to look up
    assert "active: the server went to ERROR" in text


def audit_plan(cloud: Cloud, name: str) -> dict[str, Any]:
    """A one-shot audit made through Watcher's API, and the plan the rebalancer loop makes of it."""
    with cloud.client() as admin:
        body = {"audit_type": "ONESHOT", "goal": "noisy_neighbor", "name": name}
        audit = admin.post(f"{OPT}/audits", json=body, headers=WATCHER)
        assert audit.status_code == 201, audit.text
        uuid = audit.json()["uuid"]
        plans = wait_for(
            lambda: admin.get(f"{OPT}/action_plans", params={"audit_uuid": uuid}, headers=WATCHER).json()[
                "action_plans"
            ]
        )
    (plan,) = plans
    assert plan["state"] == "RECOMMENDED"
    return dict(plan)


def plan_state(cloud: Cloud, uuid: str) -> str:
    with cloud.client() as admin:
        return str(admin.get(f"{OPT}/action_plans/{uuid}", headers=WATCHER).json()["state"])


def test_an_operator_reviews_and_starts_a_plan_and_a_refusal_is_watchers_message(site: Cloud) -> None:
    plan = audit_plan(site, "dash-audit")
    page = "/dashboard/admin/rebalancer"
    with browser(site, "admin", ADMIN_PASSWORD, "admin") as b:
        shown = b.get(page).text
        assert f'data-plan="{plan["uuid"]}"' in shown and "Plan of audit dash-audit" in shown
        assert "No migration: nothing to move." in shown and 'class="approve start-plan"' in shown
        assert re.search(r'<tr data-audit="[^"]+"><td>dash-audit</td><td>ONESHOT</td>', shown)
        action = f"/dashboard/admin/rebalancer/plans/{plan['uuid']}"
        started = post(b, page, action, {"decision": "start"})
        assert flash_of(started) == "Action plan started."
        assert plan_state(site, plan["uuid"]) in ("PENDING", "ONGOING", "SUCCEEDED")
        again = post(b, page, action, {"decision": "start"})  # no longer RECOMMENDED: Watcher's 409
        refused = flash_of(again)
        assert refused.startswith("409: ") and plan["uuid"] in refused, refused
        missing = post(b, page, "/dashboard/admin/rebalancer/plans/no-such-plan", {"decision": "cancel"})
        assert flash_of(missing).startswith("404: "), missing
        other = audit_plan(site, "dash-audit-2")
        form = {"decision": "cancel", "state": "RECOMMENDED"}
        cancelled = post(b, page, f"/dashboard/admin/rebalancer/plans/{other['uuid']}", form)
        assert flash_of(cancelled) == "Action plan cancelled."
        assert plan_state(site, other["uuid"]) == "CANCELLED"


def test_an_operator_toggles_services_and_nodes(site: Cloud) -> None:
    with site.client() as c:
        c.headers.update(IRONIC)
        node = enroll(c, "bm-1", rack="r3")
    page = "/dashboard/admin/hosts"
    with browser(site, "admin", ADMIN_PASSWORD, "admin") as b, site.client(microversion="2.53") as admin:
        (h2,) = admin.get(f"{API}/os-services", params={"host": "h2"}).json()["services"]
        disabled = post(
            b,
            page,
            f"/dashboard/admin/services/{h2['id']}",
            {"status": "disabled", "host": "h2", "reason": "disk swap"},
        )
        assert flash_of(disabled) == "h2: compute service disabled."
        row = re.search(r'<tr data-machine="h2">(.*?)</tr>', disabled, re.S)
        assert row and "yes: disk swap" in row.group(1) and ">Enable</button>" in row.group(1)
        (h2,) = admin.get(f"{API}/os-services", params={"host": "h2"}).json()["services"]
        assert (h2["status"], h2["disabled_reason"]) == ("disabled", "disk swap")
        enabled = post(b, page, f"/dashboard/admin/services/{h2['id']}", {"status": "enabled", "host": "h2"})
        assert flash_of(enabled) == "h2: compute service enabled."
        assert (
            admin.get(f"{API}/os-services", params={"host": "h2"}).json()["services"][0]["status"]
            == "enabled"
        )

        maint = f"/dashboard/admin/nodes/{node['uuid']}/maintenance"
        on = post(b, page, maint, {"maintenance": "on", "name": "bm-1", "reason": "fan"})
        assert flash_of(on) == "bm-1: maintenance on."
        row = re.search(r'<tr data-machine="bm-1">(.*?)</tr>', on, re.S)
        assert row and "yes: fan" in row.group(1) and "Maintenance off" in row.group(1)
        admin.headers.update(IRONIC)
        got = admin.get(f"/baremetal/v1/nodes/{node['uuid']}").json()
        assert (got["maintenance"], got["maintenance_reason"]) == (True, "fan")
        off = post(b, page, maint, {"maintenance": "off", "name": "bm-1"})
        assert flash_of(off) == "bm-1: maintenance off."
        assert admin.get(f"/baremetal/v1/nodes/{node['uuid']}").json()["maintenance"] is False

        power = f"/dashboard/admin/nodes/{node['uuid']}/power"
        asked = post(b, page, power, {"target": "on", "name": "bm-1"})
        assert flash_of(asked) == "bm-1: power on requested."
        assert admin.get(f"/baremetal/v1/nodes/{node['uuid']}").json()["target_power_state"] == "power on"
        # No conductor runs here: the change stays under way, and Ironic refuses another.
        refused = flash_of(post(b, page, power, {"target": "off", "name": "bm-1"}))
        assert refused.startswith("409: Node ") and "locked" in refused, refused
        bad = flash_of(post(b, page, power, {"target": "sideways", "name": "bm-1"}))
        assert bad == "400: Unknown power target: sideways"


def test_charts_show_capacity_steal_and_boot_latency(site: Cloud) -> None:
    with site.client(microversion="2.64") as admin:
        flavor = make_flavor(admin, "chart.tiny")
        image = upload_image(admin, name="chart-img")
        server = admin.post(
            f"{API}/servers",
            json={"server": {"name": "c1", "flavorRef": flavor, "imageRef": image, "networks": "none"}},
        )
        assert server.status_code == 202, server.text
        sid = server.json()["server"]["id"]
        wait_for(lambda: admin.get(f"{API}/servers/{sid}").json()["server"]["status"] == "ACTIVE")
        host = admin.get(f"{API}/servers/{sid}").json()["server"]["OS-EXT-SRV-ATTR:host"]
    with browser(site, "admin", ADMIN_PASSWORD, "admin") as b:
        quiet = b.get("/dashboard/admin/charts").text
        assert 'id="steal-chart-empty"' in quiet  # no agent has reported steal yet
        # The host's agent reports its guest waiting 0.75 cores for CPU (as kumo.agent.cpu_signal).
        signal = {
            "cores": 8,
            "load1": 0,
            "guests": {sid: {"vcpus": 1, "run_cores": 0.5, "delay_cores": 0.75}},
        }
        token = {AGENT_TOKEN_HEADER: site.settings.secret("agent_token")}
        sent = httpx.put(f"{site.url}/internal/v1/hosts/{host}/cpu-signal", json=signal, headers=token)
        assert sent.status_code == 204, sent.text
        page = b.get("/dashboard/admin/charts")
    assert page.status_code == 200, page.text
    text = page.text
    assert '<svg id="vcpu-chart"' in text and '<svg id="memory-chart"' in text
    assert re.search(
        r'class="label">nova</text>.*?class="value">1/16</text>', text, re.S
    )  # one vCPU of two hosts' 8
    assert re.search(
        rf'<svg id="steal-chart".*?class="label">{host}</text>.*?class="value">0.75</text>', text, re.S
    )
    assert '<svg id="boot-chart"' in text and "Servers booted (this API worker)</dt><dd>" in text
    booted = re.search(r"Servers booted \(this API worker\)</dt><dd>(\d+)</dd>", text)
    assert booted and int(booted.group(1)) >= 1


def test_a_member_is_refused_every_operator_page_and_form(site: Cloud) -> None:
    with browser(site, "demo", DEMO_PASSWORD, "demo") as b:
        token = csrf_of(b.get("/dashboard/servers").text)
        nav = b.get("/dashboard/servers").text
        assert "/dashboard/admin/canaries" not in nav and "/dashboard/admin/rebalancer" not in nav
        for path in ("/dashboard/admin/canaries", "/dashboard/admin/rebalancer", "/dashboard/admin/charts"):
            resp = b.get(path)
            assert resp.status_code == 403 and "Only administrators may open the operator pages." in resp.text
        for path in (
            "/dashboard/admin/rebalancer/plans/x",
            "/dashboard/admin/services/x",
            "/dashboard/admin/nodes/x/maintenance",
            "/dashboard/admin/nodes/x/power",
        ):
            resp = b.post(path, data={"csrf_token": token, "decision": "start", "target": "on"})
            assert resp.status_code == 403, (path, resp.text)
