"""Bad input of every kind gets the OpenStack status and error body, never a 500."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from kumo.tokens import TokenProvider
from tests.conftest import Cloud

NOVA = {"OpenStack-API-Version": "compute 2.64"}


@pytest.mark.parametrize(
    "method, path, kwargs, status, key",
    [
        (
            "POST",
            "/compute/v2.1/servers",
            {"content": b"{nope", "headers": {"Content-Type": "application/json"}},
            400,
            "badRequest",
        ),
        ("GET", "/compute/v2.1/servers/not-a-uuid", {}, 404, "itemNotFound"),
        ("GET", "/compute/v2.1/flavors/does-not-exist", {}, 404, "itemNotFound"),
        (
            "POST",
            "/compute/v2.1/servers",
            {"json": {"server": {"name": "n" * 256, "flavorRef": "1", "imageRef": "x"}}},
            400,
            "badRequest",
        ),
        (
            "POST",
            "/compute/v2.1/flavors",
            {"json": {"flavor": {"name": "", "vcpus": 1, "ram": 1, "disk": 1}}},
            400,
            "badRequest",
        ),
        (
            "POST",
            "/compute/v2.1/os-aggregates",
            {"json": {"aggregate": {"name": "x" * 300}}},
            400,
            "badRequest",
        ),
        ("GET", "/compute/v2.1/servers", {"headers": {"OpenStack-API-Version": "compute 3.0"}}, 406, None),
        ("GET", "/compute/v2.1/servers", {"params": {"limit": "many"}}, 400, "badRequest"),
        (
            "POST",
            "/compute/v2.1/servers/00000000-0000-0000-0000-000000000000/action",
            {"json": {"os-start": None}},
            404,
            "itemNotFound",
        ),
        ("GET", "/image/v2/images/not-a-uuid", {}, 404, None),
        ("POST", "/image/v2/images", {"json": {"visibility": "galactic"}}, 400, None),
        ("POST", "/identity/v3/projects", {"json": {"project": {"name": "p" * 100}}}, 400, None),
    ],
)
def test_bad_requests(
    cloud: Cloud, method: str, path: str, kwargs: dict, status: int, key: str | None
) -> None:
    with cloud.client() as c:
        resp = c.request(method, path, **{**kwargs, "headers": {**NOVA, **kwargs.get("headers", {})}})
    assert resp.status_code == status, resp.text
    # Glance's errors are webob's, negotiated: HTML for httpx's `Accept: */*`.
    expected = "text/html" if path.startswith("/image") else "application/json"
    assert resp.headers["content-type"].startswith(expected)
    if key is not None:
        assert resp.json()[key]["code"] == status


def test_expired_and_forged_tokens_are_401(cloud: Cloud) -> None:
    provider = TokenProvider(cloud.settings.secret("token_key", generate="fernet"), 3600)
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=1)
    expired, _ = provider.issue(
        user_id="u", user_name="u", project_id="p", project_name="p", roles=[("r", "admin")], expires_at=past
    )
    for token in (expired, "gAAAAforged", ""):
        resp = httpx.get(f"{cloud.url}/compute/v2.1/servers", headers={"X-Auth-Token": token})
        assert resp.status_code == 401
        assert resp.json()["unauthorized"]["code"] == 401


def test_reader_cannot_create(cloud: Cloud) -> None:
    with cloud.client() as admin:
        project = admin.post("/identity/v3/projects", json={"project": {"name": "ro"}}).json()["project"]
        user = admin.post(
            "/identity/v3/users", json={"user": {"name": "ro-user", "password": "pw-123456"}}
        ).json()
        role = admin.get("/identity/v3/roles", params={"name": "reader"}).json()["roles"][0]
        uid = user["user"]["id"]
        assert (
            admin.put(f"/identity/v3/projects/{project['id']}/users/{uid}/roles/{role['id']}").status_code
            == 204
        )
    with cloud.client(cloud.token("ro-user", "pw-123456", "ro")) as reader:
        assert reader.get("/compute/v2.1/servers").status_code == 200
        resp = reader.post(
            "/compute/v2.1/servers", json={"server": {"name": "x", "flavorRef": "1", "imageRef": "2"}}
        )
        assert resp.status_code == 403
        assert resp.json()["forbidden"]["code"] == 403
        assert reader.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": "k"}}).status_code == 403


def test_an_unexpected_error_is_a_500_in_the_api_format_on_a_live_connection(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug answers 500 with the service's error body, and the keep-alive connection survives
    (Starlette's last-resort handler re-raised, and uvicorn then dropped the connection)."""
    from kumo.baremetal import service

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "create_node", broken)
    with cloud.client() as c:
        c.headers["X-OpenStack-Ironic-API-Version"] = "1.65"
        resp = c.post("/baremetal/v1/nodes", json={"driver": "fake-hardware"})
        assert resp.status_code == 500
        assert "unexpected error" in resp.json()["error_message"]
        assert resp.headers["x-openstack-request-id"].startswith("req-")
        assert c.get("/baremetal/v1/nodes").status_code == 200  # same client, same connection
