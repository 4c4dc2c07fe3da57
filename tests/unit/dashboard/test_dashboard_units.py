"""The dashboard's pure parts: the session cookie's sealing, the chart geometry, how a server and
a flavor are shown, quota shares, the API error messages it shows; the cookie's Secure flag and
the pages' frame-ancestors policy."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI

from kumo.apiclient import APIError, error_message
from kumo.config import Settings
from kumo.dashboard import charts, client, pages
from kumo.dashboard.routes import error_page, install
from kumo.dashboard.session import Session, Sessions, cookie_secure


def sessions(max_age: int = 60) -> Sessions:
    return Sessions(Fernet.generate_key().decode(), max_age)


def test_a_sealed_session_opens_whole_and_only_with_its_key() -> None:
    box = sessions()
    session = Session(token="tok", user_name="demo", project_name="demo", roles=["member"], flash="hi")
    sealed = box.seal(session)
    assert "tok" not in sealed and "demo" not in sealed  # encrypted, not merely signed
    assert box.open(sealed) == session
    assert sessions().open(sealed) is None  # another cloud's key
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    assert box.open(tampered) is None
    assert box.open("") is None and box.open(None) is None and box.open("not a cookie") is None


def test_a_session_older_than_its_max_age_is_not_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    box = sessions(max_age=60)
    sealed = box.seal(Session(token="tok"))
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 61)
    assert box.open(sealed) is None


def test_csrf_tokens_are_per_session_and_must_match_exactly() -> None:
    a, b = Session(), Session()
    assert a.csrf != b.csrf and len(a.csrf) >= 40
    assert a.csrf_matches(a.csrf)
    for sent in (None, "", b.csrf, a.csrf[:-1], a.csrf + "x"):
        assert not a.csrf_matches(sent)


def test_only_the_admin_role_opens_operator_pages() -> None:
    assert Session(token="t", roles=["admin", "member"]).is_admin
    assert not Session(token="t", roles=["member", "reader"]).is_admin
    assert not Session().signed_in and Session(token="t").signed_in


@pytest.mark.parametrize(
    ("specs", "kind"),
    [
        ({}, "vm"),
        ({"hw:cpu_policy": "dedicated"}, "vm"),
        ({"resources:CUSTOM_BAREMETAL_GOLD": "1", "resources:VCPU": "0"}, "baremetal"),
    ],
)
def test_flavor_kind(specs: dict[str, str], kind: str) -> None:
    assert pages.flavor_kind({"extra_specs": specs}) == kind


def test_server_row_shows_addresses_zone_and_whether_it_is_settled() -> None:
    body = {
        "id": "s1",
        "name": "web",
        "status": "BUILD",
        "OS-EXT-STS:task_state": "spawning",
        "flavor": {"original_name": "bm.gold", "extra_specs": {"resources:CUSTOM_BAREMETAL_GOLD": "1"}},
        "addresses": {"b": [{"addr": "10.0.1.5"}], "a": [{"addr": "10.0.0.4"}, {"addr": "fd00::4"}]},
        "OS-EXT-AZ:availability_zone": "az1",
    }
    row = pages.server_row(body)
    assert row["addresses"] == ["a: 10.0.0.4", "a: fd00::4", "b: 10.0.1.5"]
    assert (row["kind"], row["flavor"], row["zone"], row["task"], row["settled"]) == (
        "baremetal",
        "bm.gold",
        "az1",
        "spawning",
        False,
    )
    rest = {**body, "OS-EXT-STS:task_state": None, "addresses": {}}
    for status in (
        "ACTIVE",
        "SUSPENDED",
        "PAUSED",
        "SHELVED",
        "SHELVED_OFFLOADED",
        "RESCUE",
        "VERIFY_RESIZE",
    ):
        assert pages.server_row({**rest, "status": status})["settled"], status
    # Nova shows a server being paused ACTIVE with its task: the page keeps polling.
    assert not pages.server_row({**rest, "status": "ACTIVE", "OS-EXT-STS:task_state": "pausing"})["settled"]


def test_actions_offered_by_status_as_nova_allows() -> None:
    assert pages.actions_for("PAUSED", False) == [
        "unpause",
        "hard-reboot",
        "create-image",
        "shelve",
        "lock",
        "delete",
    ]
    assert pages.actions_for("VERIFY_RESIZE", True) == ["confirm-resize", "revert-resize", "unlock", "delete"]
    assert "unshelve" in pages.actions_for("SHELVED_OFFLOADED", False)
    assert pages.actions_for("BUILD", False) == ["lock", "delete"]
    assert pages.action_body("rescue", {"image": ""}) == {"rescue": None}
    assert pages.action_body("rescue", {"image": "i1"}) == {"rescue": {"rescue_image_ref": "i1"}}
    assert pages.action_body("resize", {"flavor": "f2"}) == {"resize": {"flavorRef": "f2"}}
    assert pages.action_body("create-image", {"image_name": "snap"}) == {"createImage": {"name": "snap"}}
    assert pages.action_body("confirm-resize", {}) == {"confirmResize": None}
    with pytest.raises(APIError):
        pages.action_body("explode", {})


@pytest.mark.parametrize(
    ("used", "limit", "percent"), [(0, 10, 0), (5, 10, 50), (12, 10, 100), (3, -1, 0), (1, 3, 33)]
)
def test_quota_share(used: int, limit: int, percent: int) -> None:
    assert pages.QuotaRow("x", used, limit).percent == percent


def machine(zone: str, used: int, total: int) -> pages.Machine:
    return pages.Machine("h", "hypervisor", "", zone, "", "up", "", False, "", vcpus_used=used, vcpus=total)


def test_capacity_by_zone_sums_hypervisors_and_leaves_nodes_out() -> None:
    machines = [machine("b", 2, 8), machine("a", 1, 4), machine("b", 6, 8), machine("a", 0, 0)]
    assert charts.capacity_by_zone(machines) == {"a": (1, 4), "b": (8, 16)}


def test_bar_chart_geometry() -> None:
    chart = charts.bar_chart("t", {"": (0, 0), "a": (8, 16), "over": (40, 32)})
    assert [b.label for b in chart.bars] == ["(no zone)", "a", "over"]
    assert [b.used_width for b in chart.bars] == [0, charts.BAR_WIDTH // 2, charts.BAR_WIDTH]  # never past
    ys = [b.y for b in chart.bars]
    assert ys == sorted(ys) and all(b - a >= charts.BAR_HEIGHT for a, b in zip(ys, ys[1:], strict=False))
    assert chart.height >= ys[-1] + charts.BAR_HEIGHT
    assert chart.bars[2].text == "40/32"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"itemNotFound": {"code": 404, "message": "Instance x could not be found."}},
            "Instance x could not be found.",
        ),
        (
            {"error": {"code": 401, "message": "The request you have made requires authentication."}},
            "The request you have made requires authentication.",
        ),
        (
            {"NeutronError": {"type": "NetworkNotFound", "message": "Network n could not be found."}},
            "Network n could not be found.",
        ),
        (
            {"error_message": '{"faultstring": "Node n could not be found.", "faultcode": "Client"}'},
            "Node n could not be found.",
        ),
        ({"error_message": "plain"}, "plain"),
        (None, "fallback"),
    ],
)
def test_the_api_message_is_what_is_shown(body: object, message: str) -> None:
    assert error_message(body, "fallback") == message


def test_glance_json_errors_show_their_message_alone() -> None:
    body = {
        "message": "No image found with ID x<br /><br />\n\n\n",
        "code": "404 Not Found",
        "title": "Not Found",
    }
    resp = httpx.Response(404, json=body)
    with pytest.raises(APIError) as raised:
        client.body_or_raise(resp)
    assert (raised.value.status, raised.value.message) == (404, "No image found with ID x")


def test_an_unreachable_api_is_a_502_saying_so() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    api = client.API(
        httpx.Client(transport=httpx.MockTransport(refuse)), "http://api.invalid", "tok", "req-1"
    )
    with pytest.raises(APIError) as raised:
        api.get("/compute/v2.1/servers")
    assert raised.value.status == 502
    assert (
        raised.value.message
        == "The API at http://api.invalid could not be reached: ConnectError: connection refused"
    )


def test_every_call_carries_the_token_the_request_id_and_the_microversion() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"servers": []})

    api = client.API(httpx.Client(transport=httpx.MockTransport(answer)), "http://api", "tok", "req-7")
    assert api.get("/compute/v2.1/servers/detail") == {"servers": []}
    headers = seen[0].headers
    assert (headers["x-auth-token"], headers["x-openstack-request-id"]) == ("tok", "req-7")
    assert headers["openstack-api-version"] == client.COMPUTE_VERSION
    assert str(seen[0].url) == "http://api/compute/v2.1/servers/detail"


def test_group_label_names_policy_and_failure_domain() -> None:
    assert (
        pages.group_label({"name": "db", "policy": "anti-affinity", "rules": {}})
        == "db (anti-affinity by host)"
    )
    rack = {"name": "db", "policy": "soft-anti-affinity", "rules": {"failure_domain": "rack"}}
    assert pages.group_label(rack) == "db (soft-anti-affinity by rack)"


def test_usage_period_is_the_last_days_in_novas_format() -> None:
    now = dt.datetime(2026, 3, 2, 12, 30, 5)
    assert pages.usage_period(now) == {"start": "2026-01-31T12:30:05", "end": "2026-03-02T12:30:05"}
    assert pages.usage_period(now, days=1)["start"] == "2026-03-01T12:30:05"


@pytest.mark.parametrize(
    ("scheme", "server", "url"),
    [
        ("http", ("127.0.0.1", 8780), "http://127.0.0.1:8780"),
        ("https", ("::1", 443), "https://[::1]:443"),
    ],
)
def test_own_url_is_the_socket_address(scheme: str, server: tuple[str, int | None], url: str) -> None:
    assert client.own_url(scheme, server) == url


@pytest.mark.parametrize("server", [None, ("/run/kumo.sock", None)])
def test_own_url_without_an_address_asks_for_the_setting(server: tuple[str, int | None] | None) -> None:
    with pytest.raises(APIError, match="KUMO_DASHBOARD_API_URL"):
        client.own_url("http", server)


def test_an_id_from_a_page_url_stays_one_path_segment() -> None:
    assert pages.q("3f2a-11") == "3f2a-11"
    assert (
        pages.q("..") == "%2E%2E"
        and pages.q(".") == "%2E"
        and pages.q("a.b") == "a.b"
        and pages.q("a/../b") == "a%2F..%2Fb"
        and pages.q("my key") == "my%20key"
    )


def test_the_create_form_becomes_novas_create_body() -> None:
    sent: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(202, json={"server": {"id": "new-id"}})

    api = client.API(httpx.Client(transport=httpx.MockTransport(answer)), "http://api", "tok", "req-1")
    form = {"name": "web", "flavor": "f1", "image": "i1", "network": "n1", "key_name": "k", "group": "g1"}
    assert pages.create_server(api, {**form, "user_data": "#cloud-config\n"}) == "new-id"
    assert sent[0] == {
        "server": {
            "name": "web",
            "flavorRef": "f1",
            "imageRef": "i1",
            "networks": [{"uuid": "n1"}],
            "key_name": "k",
            "user_data": base64.b64encode(b"#cloud-config\n").decode(),
        },
        "os:scheduler_hints": {"group": "g1"},
    }
    pages.create_server(api, {"name": "bare", "flavor": "f1", "image": "i1", "network": "", "key_name": ""})
    assert sent[1] == {"server": {"name": "bare", "flavorRef": "f1", "imageRef": "i1", "networks": "auto"}}


@pytest.mark.parametrize(
    ("setting", "scheme", "host", "secure"),
    [
        (None, "https", "127.0.0.1", True),
        (None, "http", "127.0.0.1", False),  # kumo up's own http://127.0.0.1
        (None, "http", "::1", False),
        (None, "http", "localhost", False),
        (None, "http", "10.0.0.5", True),  # plain http to a real address: a TLS proxy's hop
        (None, "http", "testserver", True),
        (None, "http", None, True),
        (True, "http", "127.0.0.1", True),  # the setting wins both ways
        (False, "https", "10.0.0.5", False),
    ],
)
def test_cookie_secure(setting: bool | None, scheme: str, host: str | None, secure: bool) -> None:
    assert cookie_secure(setting, scheme, host) is secure


def test_pages_forbid_framing_and_the_cookie_follows_the_setting(tmp_path: Path) -> None:
    async def login_page(app: FastAPI) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
            return await browser.get("/dashboard/login")  # plain http to a non-loopback address

    for setting, secure in ((None, True), (False, False)):
        app = FastAPI()
        install(app, Settings(state_dir=tmp_path, dashboard_cookie_secure=setting))
        page = asyncio.run(login_page(app))
        assert page.status_code == 200
        assert page.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
        cookie = page.headers["set-cookie"]
        assert cookie.startswith("kumo_dashboard=") and "HttpOnly" in cookie
        assert ("; Secure" in cookie) is secure
    missing = error_page(404, "No such page.")  # what the API's error handlers answer for /dashboard
    assert missing.status_code == 404
    assert missing.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
