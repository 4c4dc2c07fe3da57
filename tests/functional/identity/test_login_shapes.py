"""Wrong JSON types in the unauthenticated Keystone login body are 400s in Keystone's error body,
answered before anything is looked up (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kumo.identity import service
from tests.conftest import ADMIN_PASSWORD, Cloud

USER = {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}


def password(user: Any = None, scope: Any = None, **identity: Any) -> dict[str, Any]:
    auth: dict[str, Any] = {
        "identity": {"methods": ["password"], "password": {"user": user or USER}, **identity}
    }
    if scope is not None:
        auth["scope"] = scope
    return {"auth": auth}


def token(token_ref: Any) -> dict[str, Any]:
    return {"auth": {"identity": {"methods": ["token"], "token": token_ref}}}


BAD_SHAPES: list[Any] = [
    {},
    {"auth": []},
    {"auth": "x"},
    {"auth": {}},
    {"auth": {"identity": "x"}},
    {"auth": {"identity": []}},
    {"auth": {"identity": {}}},
    {"auth": {"identity": {"methods": "password"}}},
    {"auth": {"identity": {"methods": [5]}}},
    {"auth": {"identity": {"methods": [["password"]]}}},
    {"auth": {"identity": {"methods": ["password"], "password": "x"}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": "admin"}}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": ["admin"]}}}},
    password({"name": 5, "password": "x"}),
    password({"name": ["admin"], "password": "x"}),
    password({"name": None, "password": "x"}),
    password({"id": 5, "password": "x"}),
    password({"id": {"a": 1}, "password": "x"}),
    password({"name": "admin", "password": 5}),
    password({"name": "admin", "password": ["x"]}),
    password({"name": "admin", "password": None}),
    password({"name": "admin", "domain": "default", "password": "x"}),
    password({"name": "admin", "domain": {"id": 5}, "password": "x"}),
    password({"name": "admin", "domain": {"name": True}, "password": "x"}),
    password({"name": "admin", "domain": {}, "password": "x"}),
    password({"password": "x"}),
    password(scope=5),
    password(scope=["project"]),
    password(scope={"project": "admin"}),
    password(scope={"project": {"name": ["x"]}}),
    password(scope={"project": {"id": 5}}),
    password(scope={"project": {}}),
    password(scope={"project": {"name": "admin", "domain": {"id": 7}}}),
    password(scope={"project": {"name": "admin", "domain": "default"}}),
    password(scope={"project": {"name": "admin", "domain": {}}}),
    password(scope={"domain": 5}),
    password(scope={"domain": {"id": 5}}),
    password(scope={"system": {"all": "yes"}}),
    password(scope={"OS-TRUST:trust": {"id": 5}}),
    token("abc"),
    token({"id": {"a": 1}}),
    token({"id": 5}),
    token({}),
    token(["abc"]),
]


@pytest.fixture(params=["cloud", "pg_cloud"])
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def test_wrong_types_are_400s_before_any_lookup(any_cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up: list[Any] = []
    real_authenticate = service.authenticate
    monkeypatch.setattr(service, "authenticate", lambda *a: looked_up.append(a) or real_authenticate(*a))
    with httpx.Client(base_url=any_cloud.url, timeout=30) as c:
        for body in BAD_SHAPES:
            resp = c.post("/identity/v3/auth/tokens", json=body)
            assert resp.status_code == 400, f"{body}: {resp.status_code} {resp.text}"
            error = resp.json()["error"]
            assert error["code"] == 400 and error["title"] == "Bad Request" and error["message"], body
            assert ADMIN_PASSWORD not in error["message"]
        assert looked_up == []
        # Well-formed bodies still log in, or are refused as Keystone refuses them.
        assert c.post("/identity/v3/auth/tokens", json=password()).status_code == 201
        scoped = password(scope={"project": {"name": "admin", "domain": {"id": "default"}}})
        assert c.post("/identity/v3/auth/tokens", json=scoped).status_code == 201
        assert c.post("/identity/v3/auth/tokens", json=password(scope="unscoped")).status_code == 201
        unknown = c.post("/identity/v3/auth/tokens", json={"auth": {"identity": {"methods": ["totp"]}}})
        assert unknown.status_code == 401 and unknown.json()["error"]["code"] == 401
        assert c.post("/identity/v3/auth/tokens", json=token({"id": "not-a-token"})).status_code == 401
        wrong = password({"name": "admin", "domain": {"id": "default"}, "password": "wrong"})
        assert c.post("/identity/v3/auth/tokens", json=wrong).status_code == 401
    assert len(looked_up) == 6
