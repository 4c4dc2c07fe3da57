"""Implied roles over HTTP: the bootstrap chain admin → manager → member → reader, the implies
API, tokens and effective role assignments listing implied roles, and a rescoped token's methods."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import DEMO_PASSWORD, Cloud

V3 = "/identity/v3"


def _role(c: httpx.Client, name: str | None = None) -> dict[str, Any]:
    resp = c.post(f"{V3}/roles", json={"role": {"name": name or f"r-{uuid.uuid4().hex[:8]}"}})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()["role"]
    return body


def _role_id(c: httpx.Client, name: str) -> str:
    return str(c.get(f"{V3}/roles", params={"name": name}).json()["roles"][0]["id"])


def _token_roles(cloud: Cloud, token: str) -> list[str]:
    with cloud.client() as c:
        resp = c.get(f"{V3}/auth/tokens", headers={"X-Subject-Token": token})
    assert resp.status_code == 200, resp.text
    return sorted(r["name"] for r in resp.json()["token"]["roles"])


def test_bootstrap_chain_is_listed_and_reflected_in_tokens(cloud: Cloud) -> None:
    with cloud.client() as c:
        rules = c.get(f"{V3}/role_inferences").json()["role_inferences"]
        chain = {r["prior_role"]["name"]: [i["name"] for i in r["implies"]] for r in rules}
        assert chain["admin"] == ["manager"] and chain["manager"] == ["member"]
        assert chain["member"] == ["reader"] and "service" not in chain
        assert rules[0]["prior_role"]["links"]["self"].startswith(f"{cloud.url}{V3}/roles/")
    assert _token_roles(cloud, cloud.token()) == ["admin", "manager", "member", "reader"]
    assert _token_roles(cloud, cloud.token("demo", DEMO_PASSWORD, "demo")) == ["member", "reader"]


def test_implies_api_create_show_check_list_delete(cloud: Cloud) -> None:
    with cloud.client() as c:
        prior, implied = _role(c), _role(c)
        url = f"{V3}/roles/{prior['id']}/implies/{implied['id']}"
        assert c.head(url).status_code == 404
        created = c.put(url)
        assert created.status_code == 201, created.text
        rule = created.json()["role_inference"]
        assert rule["prior_role"]["id"] == prior["id"] and rule["implies"]["id"] == implied["id"]
        assert c.put(url).status_code == 201  # idempotent
        assert c.get(url).json()["role_inference"]["implies"]["name"] == implied["name"]
        assert c.head(url).status_code == 204
        listed = c.get(f"{V3}/roles/{prior['id']}/implies").json()["role_inference"]
        assert [r["id"] for r in listed["implies"]] == [implied["id"]]
        assert c.delete(url).status_code == 204
        missing = c.get(url)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == 404
        assert c.delete(url).status_code == 404
        assert c.put(f"{V3}/roles/{prior['id']}/implies/nope").status_code == 404


def test_admin_is_never_implied_and_cycles_are_refused(cloud: Cloud) -> None:
    with cloud.client() as c:
        a, b = _role(c), _role(c)
        forbidden = c.put(f"{V3}/roles/{a['id']}/implies/{_role_id(c, 'admin')}")
        assert forbidden.status_code == 403 and forbidden.json()["error"]["title"]
        assert c.put(f"{V3}/roles/{a['id']}/implies/{b['id']}").status_code == 201
        cycle = c.put(f"{V3}/roles/{b['id']}/implies/{a['id']}")
        assert cycle.status_code == 400, cycle.text
        assert c.put(f"{V3}/roles/{a['id']}/implies/{a['id']}").status_code == 400


def test_a_custom_rule_reaches_new_tokens_and_effective_assignments(cloud: Cloud) -> None:
    with cloud.client() as c:
        observer = _role(c)
        reader = _role_id(c, "reader")
        assert c.put(f"{V3}/roles/{reader}/implies/{observer['id']}").status_code == 201
        try:
            assert observer["name"] in _token_roles(cloud, cloud.token("demo", DEMO_PASSWORD, "demo"))
            demo = c.get(f"{V3}/users", params={"name": "demo"}).json()["users"][0]["id"]
            direct = c.get(f"{V3}/role_assignments", params={"user.id": demo}).json()["role_assignments"]
            assert {a["role"]["id"] for a in direct} == {_role_id(c, "member")}
            effective = c.get(
                f"{V3}/role_assignments", params={"user.id": demo, "effective": "", "include_names": "1"}
            ).json()["role_assignments"]
            names = {a["role"]["name"] for a in effective if a["scope"]["project"]["name"] == "demo"}
            assert names == {"member", "reader", observer["name"]}
            implied = [a for a in effective if a["role"]["name"] == observer["name"]]
            # As Keystone: the link names the role actually assigned (member, through reader).
            assert implied[0]["links"]["prior_role"].endswith(f"/roles/{_role_id(c, 'member')}")
        finally:
            c.delete(f"{V3}/roles/{reader}/implies/{observer['id']}")


def test_policy_reads_implied_roles_and_non_admins_cannot_manage_rules(cloud: Cloud) -> None:
    demo = cloud.token("demo", DEMO_PASSWORD, "demo")
    with cloud.client(demo) as c:
        assert c.get(f"{V3}/role_inferences").status_code == 403
        me = c.get(f"{V3}/auth/tokens", headers={"X-Subject-Token": demo}).json()["token"]
        assert "reader" in [r["name"] for r in me["roles"]]


def test_rescoped_token_keeps_its_methods(cloud: Cloud) -> None:
    unscoped = httpx.post(
        f"{cloud.url}{V3}/auth/tokens",
        json={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": "demo", "domain": {"id": "default"}, "password": DEMO_PASSWORD}
                    },
                },
                "scope": "unscoped",
            }
        },
    )
    assert unscoped.status_code == 201, unscoped.text
    assert unscoped.json()["token"]["methods"] == ["password"]
    rescoped = httpx.post(
        f"{cloud.url}{V3}/auth/tokens",
        json={
            "auth": {
                "identity": {"methods": ["token"], "token": {"id": unscoped.headers["X-Subject-Token"]}},
                "scope": {"project": {"name": "demo", "domain": {"id": "default"}}},
            }
        },
    )
    assert rescoped.status_code == 201, rescoped.text
    token = rescoped.json()["token"]
    assert token["methods"] == ["password", "token"]
    assert sorted(r["name"] for r in token["roles"]) == ["member", "reader"]


def test_removing_a_rule_revokes_the_tokens_that_listed_what_it_gave(cloud: Cloud) -> None:
    with cloud.client() as c:
        auditor = _role(c)
        member = _role_id(c, "member")
        assert c.put(f"{V3}/roles/{member}/implies/{auditor['id']}").status_code == 201
    demo = cloud.token("demo", DEMO_PASSWORD, "demo")
    assert auditor["name"] in _token_roles(cloud, demo)
    with cloud.client() as c:
        assert c.delete(f"{V3}/roles/{member}/implies/{auditor['id']}").status_code == 204
    assert httpx.get(f"{cloud.url}{V3}/auth/catalog", headers={"X-Auth-Token": demo}).status_code == 401
    assert auditor["name"] not in _token_roles(cloud, cloud.token("demo", DEMO_PASSWORD, "demo"))


def _user_with(c: httpx.Client, project: str, role_id: str) -> str:
    name = f"u-{uuid.uuid4().hex[:8]}"
    resp = c.post(
        f"{V3}/users", json={"user": {"name": name, "password": "secret-pw-1", "domain_id": "default"}}
    )
    assert resp.status_code == 201, resp.text
    user = resp.json()["user"]["id"]
    assert c.put(f"{V3}/projects/{project}/users/{user}/roles/{role_id}").status_code == 204
    return name


def test_deleting_a_role_revokes_the_tokens_that_carry_it(cloud: Cloud) -> None:
    """Holders of the role and of a role implying it lose their tokens; others keep theirs."""
    with cloud.client() as c:
        project = c.get(f"{V3}/projects", params={"name": "demo"}).json()["projects"][0]["id"]
        custom, prior = _role(c), _role(c)
        assert c.put(f"{V3}/roles/{prior['id']}/implies/{custom['id']}").status_code == 201
        direct = _user_with(c, project, custom["id"])
        through = _user_with(c, project, prior["id"])
    tokens = {name: cloud.token(name, "secret-pw-1", "demo") for name in (direct, through)}
    assert custom["name"] in _token_roles(cloud, tokens[direct])
    assert custom["name"] in _token_roles(cloud, tokens[through])
    bystander = cloud.token("demo", DEMO_PASSWORD, "demo")
    with cloud.client() as c:
        assert c.delete(f"{V3}/roles/{custom['id']}").status_code == 204
    for token in tokens.values():
        assert httpx.get(f"{cloud.url}{V3}/auth/catalog", headers={"X-Auth-Token": token}).status_code == 401
    assert httpx.get(f"{cloud.url}{V3}/auth/catalog", headers={"X-Auth-Token": bystander}).status_code == 200
    assert custom["name"] not in _token_roles(cloud, cloud.token(through, "secret-pw-1", "demo"))
