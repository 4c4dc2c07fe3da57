"""The operator pages' pure parts: /metrics read into steal per host and the boot histogram,
the charts drawn from them, a plan's actions as the review shows them, and the API calls the
toggles and plan buttons make (paths, bodies, microversion headers), with the API's refusal
as the message shown."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from kumo.apiclient import APIError
from kumo.dashboard import charts, client, exposition, pages
from kumo.dashboard.routes import templates
from kumo.dashboard.session import Session

PAGE = """# HELP kumo_host_steal_cores Cores the host's guests wanted but waited for
# TYPE kumo_host_steal_cores gauge
kumo_host_steal_cores{host="h2"} 0.5
kumo_host_steal_cores{host="h1"} 1.25
# HELP kumo_server_boot_seconds Seconds from a server's create request to its first spawn done
# TYPE kumo_server_boot_seconds histogram
kumo_server_boot_seconds_bucket{le="1.0"} 0.0
kumo_server_boot_seconds_bucket{le="2.0"} 2.0
kumo_server_boot_seconds_bucket{le="5.0"} 6.0
kumo_server_boot_seconds_bucket{le="+Inf"} 8.0
kumo_server_boot_seconds_count 8.0
kumo_server_boot_seconds_sum 30.0
# HELP kumo_hosts Compute hosts
# TYPE kumo_hosts gauge
kumo_hosts{liveness="up",type="hypervisor"} 2.0
"""


def test_metrics_page_gives_steal_per_host_and_the_boot_histogram() -> None:
    scrape = exposition.parse(PAGE)
    assert scrape.steal == {"h1": 1.25, "h2": 0.5}
    assert scrape.boot.count == 8
    assert scrape.boot.per_bucket() == [(0.0, 1.0, 0), (1.0, 2.0, 2), (2.0, 5.0, 4), (5.0, float("inf"), 2)]
    assert scrape.boot.quantile(0.5) == pytest.approx(2.0 + 3.0 * (4 - 2) / 4)  # rank 4 in (2, 5]
    assert scrape.boot.quantile(0.99) == 5.0  # in +Inf: the largest finite bound


def test_an_empty_page_gives_no_steal_and_no_boots() -> None:
    scrape = exposition.parse("")
    zeros = exposition.parse(
        'kumo_server_boot_seconds_bucket{le="1.0"} 0.0\nkumo_server_boot_seconds_bucket{le="+Inf"} 0.0\n'
    )
    assert zeros.boot.count == 0 and charts.boot_chart(zeros.boot).bars == []  # no boot yet: no bars
    assert scrape.steal == {} and scrape.boot.count == 0 and scrape.boot.quantile(0.5) is None
    assert charts.steal_chart(scrape.steal).bars == [] and charts.boot_chart(scrape.boot).bars == []


def test_steal_chart_puts_the_worst_host_first_at_full_length() -> None:
    chart = charts.steal_chart({"b": 0.5, "a": 1.0, "c": 0.5})
    assert [(b.label, b.used_width, b.text) for b in chart.bars] == [
        ("a", charts.BAR_WIDTH, "1.00"),
        ("b", charts.BAR_WIDTH // 2, "0.50"),
        ("c", charts.BAR_WIDTH // 2, "0.50"),
    ]


def test_boot_chart_has_a_bar_per_bucket_with_its_count() -> None:
    chart = charts.boot_chart(exposition.parse(PAGE).boot)
    assert [(b.label, b.text) for b in chart.bars] == [
        ("≤ 1 s", "0"),
        ("≤ 2 s", "2"),
        ("≤ 5 s", "4"),
        ("> 5 s", "2"),
    ]
    assert [b.used_width for b in chart.bars] == [
        0,
        charts.BAR_WIDTH // 2,
        charts.BAR_WIDTH,
        charts.BAR_WIDTH // 2,
    ]


def test_memory_capacity_by_zone() -> None:
    m = pages.Machine("h", "hypervisor", "", "a", "", "up", "", False, "", memory_mb_used=512, memory_mb=4096)
    node = pages.Machine("n", "baremetal", "", "a", "", "active", "power on", False, "")
    assert charts.capacity_by_zone([m, node], "memory_mb") == {"a": (512, 4096)}
    ids = [i for i, _ in charts.operator_charts([m], exposition.parse(""))]
    assert ids == ["vcpu-chart", "memory-chart", "steal-chart", "boot-chart"]


def test_a_plans_action_shows_server_path_reason_and_predicted_effect() -> None:
    action = {
        "uuid": "a1",
        "state": "PENDING",
        "status_message": None,
        "input_parameters": {
            "resource_id": "srv",
            "source_node": "h1",
            "destination_node": "h2",
            "victims": ["v1"],
            "steal_pct": 12.5,
            "gain_cores": 0.75,
            "demand_cores": 3.0,
            "est_seconds": 14.2,
        },
    }
    move = pages._move(action)
    assert (move["server"], move["source"], move["destination"]) == ("srv", "h1", "h2")
    assert move["reason"] == "12.5 % steal; victims on the source: v1"
    assert move["effect"] == (
        "source loses 0.75 fewer stolen cores; destination demand 3.0 cores; about 14.2 s to migrate"
    )


def recorder(status: int = 202, body: Any = None) -> tuple[client.API, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body) if body is not None else httpx.Response(status)

    return client.API(httpx.Client(transport=httpx.MockTransport(answer)), "http://api", "tok", "req-1"), seen


def sent(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


def test_plan_buttons_speak_watchers_api_with_its_microversion() -> None:
    api, seen = recorder()
    pages.decide_plan(api, "p/1", "start")
    pages.decide_plan(api, "p1", "cancel")
    pages.decide_plan(api, "p1", "cancel", "ONGOING")  # its running actions finish first
    start, cancel, cancelling = seen
    assert (start.method, start.url.raw_path.decode(), sent(start)) == (
        "POST",
        "/infra-optim/v1/action_plans/p%2F1/start",  # one segment
        None,
    )
    assert (cancel.method, cancel.url.path) == ("PATCH", "/infra-optim/v1/action_plans/p1")
    assert sent(cancel) == [{"op": "replace", "path": "/state", "value": "CANCELLED"}]
    assert sent(cancelling) == [{"op": "replace", "path": "/state", "value": "CANCELLING"}]
    assert all(r.headers["openstack-api-version"] == "infra-optim 1.5" for r in seen)
    with pytest.raises(APIError) as raised:
        pages.decide_plan(api, "p1", "explode")
    assert raised.value.status == 400 and len(seen) == 3  # nothing sent


def test_toggles_speak_novas_and_ironics_apis() -> None:
    api, seen = recorder(200, {})
    pages.set_service(api, "svc-1", False, "disk swap")
    pages.set_service(api, "svc-1", True, "ignored")
    pages.set_node_maintenance(api, "n1", True, "fan")
    pages.set_node_maintenance(api, "n1", False, "")
    pages.set_node_power(api, "n1", "off")
    disable, enable, m_on, m_off, power = seen
    assert (disable.method, disable.url.path) == ("PUT", "/compute/v2.1/os-services/svc-1")
    assert sent(disable) == {"status": "disabled", "disabled_reason": "disk swap"}
    assert sent(enable) == {"status": "enabled"}
    assert disable.headers["openstack-api-version"] == client.COMPUTE_VERSION  # 2.53+: by uuid
    assert (m_on.method, m_on.url.path, sent(m_on)) == (
        "PUT",
        "/baremetal/v1/nodes/n1/maintenance",
        {"reason": "fan"},
    )
    assert (m_off.method, m_off.url.path) == ("DELETE", "/baremetal/v1/nodes/n1/maintenance")
    assert (power.url.path, sent(power)) == ("/baremetal/v1/nodes/n1/states/power", {"target": "power off"})
    assert all(r.headers["x-openstack-ironic-api-version"] == "1.65" for r in (m_on, m_off, power))


def test_a_refusal_is_the_apis_own_message() -> None:
    fault = {"faultstring": "Action plan p1 is PENDING: it cannot be started", "faultcode": "Client"}
    api, _ = recorder(409, {"error_message": json.dumps(fault)})
    with pytest.raises(APIError) as raised:
        pages.decide_plan(api, "p1", "start")
    assert (raised.value.status, raised.value.message) == (409, fault["faultstring"])


def test_canary_verdicts_are_spelled_out() -> None:
    body = {
        "canaries": [{"scope": "host", "target": "h2"}, {"scope": "az", "target": "nova"}],
        "hosts": [
            {"host": "h2", "verdict": "suspect"},
            {"host": "h1", "verdict": "failing"},
            {"host": "h3", "verdict": "healthy"},
        ],
    }
    api, seen = recorder(200, body)
    found = pages.canaries(api)
    assert seen[0].url.params["latest"] == "true"
    assert [(r["scope"], r["target"]) for r in found["runs"]] == [("az", "nova"), ("host", "h2")]
    assert [(h["host"], h["verdict_text"]) for h in found["hosts"]] == [
        ("h1", "failing (disabled, reason canary)"),
        ("h2", "suspect (down-weighted)"),
        ("h3", "healthy"),
    ]


def watcher(request: httpx.Request) -> httpx.Response:
    """A Watcher answering one audit, one RECOMMENDED plan with one move and one server left."""
    bodies: dict[str, Any] = {
        "/infra-optim/v1/audits/detail": {
            "audits": [{"uuid": "au1", "name": "nightly", "audit_type": "ONESHOT", "state": "SUCCEEDED"}]
        },
        "/infra-optim/v1/action_plans/detail": {
            "action_plans": [
                {
                    "uuid": "pl1",
                    "audit_uuid": "au1",
                    "state": "RECOMMENDED",
                    "efficacy_indicators": [
                        {"name": "lost_cores_before", "value": 2.0},
                        {"name": "lost_cores_after", "value": 0.5},
                    ],
                    "global_efficacy": [{"name": "steal_reduction", "value": 75.0}],
                    "skipped": [{"server": "s2", "host": "h1", "reason": "LOW_GAIN", "detail": "0.01 cores"}],
                }
            ]
        },
        "/infra-optim/v1/actions/detail": {
            "actions": [
                {
                    "uuid": "ac1",
                    "action_plan_uuid": "pl1",
                    "state": "PENDING",
                    "input_parameters": {"resource_id": "s1", "source_node": "h1", "destination_node": "h2"},
                }
            ]
        },
    }
    return httpx.Response(200, json=bodies[request.url.path])


def test_the_rebalancer_page_shows_a_plans_moves_what_it_left_and_its_buttons() -> None:
    api = client.API(httpx.Client(transport=httpx.MockTransport(watcher)), "http://api", "tok", "req-1")
    context = pages.rebalancer(api)
    (plan,) = context["plans"]
    assert (plan["audit_name"], plan["lost_before"], plan["lost_after"], plan["reduction"]) == (
        "nightly",
        2.0,
        0.5,
        75.0,
    )
    page = templates.get_template("admin_rebalancer.html").render(
        s=Session(token="t", roles=["admin"]), flash="", request_id="req-1", path="", **context
    )
    assert 'Plan of audit nightly: <span class="plan-state">RECOMMENDED</span>' in page
    assert '<tr data-action="ac1"><td><code>s1</code></td><td>h1 → h2</td>' in page
    assert "<td><code>s2</code></td><td>h1</td><td>LOW_GAIN</td><td>0.01 cores</td>" in page
    assert "2.0 → 0.5 (75.0 % less)" in page
    assert page.count('action="/dashboard/admin/rebalancer/plans/pl1"') == 2  # Start and Cancel
