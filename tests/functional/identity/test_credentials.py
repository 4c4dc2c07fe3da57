"""Keystone credentials over HTTP (tempest's test_credentials): create, show, update, list and
delete; an ec2 credential's id is the SHA-256 of its access key and never changes; the blob is
stored encrypted and returned as given; users see and change only their own, admins anyone's."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import httpx
import sqlalchemy as sa

from tests.conftest import DEMO_PASSWORD, Cloud

V3 = "/identity/v3"


def _error(resp: httpx.Response, status: int) -> None:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == status and error["message"] and error["title"]


def _id(c: httpx.Client, kind: str, name: str) -> str:
    return str(c.get(f"{V3}/{kind}s", params={"name": name}).json()[f"{kind}s"][0]["id"])


def _blob(access: str) -> str:
    return json.dumps({"access": access, "secret": f"s-{uuid.uuid4().hex}"})


def test_credentials_crud_and_who_sees_them(cloud: Cloud) -> None:
    with cloud.client() as c:
        demo, admin = _id(c, "user", "demo"), _id(c, "user", "admin")
        p1 = c.post(f"{V3}/projects", json={"project": {"name": "cred-1"}}).json()["project"]["id"]
        p2 = c.post(f"{V3}/projects", json={"project": {"name": "cred-2"}}).json()["project"]["id"]
        access = f"a-{uuid.uuid4().hex}"
        blob = _blob(access)
        made = c.post(
            f"{V3}/credentials",
            json={"credential": {"user_id": demo, "project_id": p1, "type": "ec2", "blob": blob}},
        )
        assert made.status_code == 201, made.text
        cred = made.json()["credential"]
        assert cred["id"] == hashlib.sha256(access.encode()).hexdigest()
        assert (cred["user_id"], cred["project_id"], cred["type"], cred["blob"]) == (demo, p1, "ec2", blob)
        assert cred["links"]["self"] == f"{cloud.url}{V3}/credentials/{cred['id']}"
        again = {"user_id": admin, "project_id": p1, "type": "ec2", "blob": blob}
        _error(c.post(f"{V3}/credentials", json={"credential": again}), 409)

        new_blob = _blob(f"new-{uuid.uuid4().hex}")
        updated = c.patch(
            f"{V3}/credentials/{cred['id']}",
            json={"credential": {"blob": new_blob, "project_id": p2, "type": "ec2"}},
        )
        assert updated.status_code == 200, updated.text
        got = updated.json()["credential"]
        assert (got["id"], got["project_id"], got["user_id"], got["blob"]) == (cred["id"], p2, demo, new_blob)
        assert c.get(f"{V3}/credentials/{cred['id']}").json()["credential"] == got

        mine = c.post(
            f"{V3}/credentials", json={"credential": {"user_id": admin, "type": "totp", "blob": "JBSWY3DP"}}
        ).json()["credential"]
        assert mine["project_id"] is None and len(mine["id"]) == 32
        listed = {x["id"] for x in c.get(f"{V3}/credentials").json()["credentials"]}
        assert listed == {cred["id"], mine["id"]}
        assert [
            x["id"] for x in c.get(f"{V3}/credentials", params={"type": "totp"}).json()["credentials"]
        ] == [mine["id"]]
        by_user = c.get(f"{V3}/credentials", params={"user_id": demo}).json()["credentials"]
        assert [x["id"] for x in by_user] == [cred["id"]]

    # The blob is not stored in the clear.
    engine = sa.create_engine(cloud.settings.resolved_database_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT encrypted_blob FROM identity_credentials")).scalars().all()
    engine.dispose()
    assert len(stored) == 2 and not any("JBSWY3DP" in s or "new-" in s for s in stored)

    with cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as c:
        assert [x["id"] for x in c.get(f"{V3}/credentials").json()["credentials"]] == [cred["id"]]
        assert c.get(f"{V3}/credentials/{cred['id']}").json()["credential"]["blob"] == new_blob
        _error(c.get(f"{V3}/credentials/{mine['id']}"), 404)
        _error(c.delete(f"{V3}/credentials/{mine['id']}"), 404)
        forged = {"user_id": admin, "type": "totp", "blob": "x"}
        _error(c.post(f"{V3}/credentials", json={"credential": forged}), 403)
        own = c.post(
            f"{V3}/credentials", json={"credential": {"user_id": demo, "type": "cert", "blob": "pem"}}
        )
        assert own.status_code == 201, own.text
        _error(c.patch(f"{V3}/credentials/{cred['id']}", json={"credential": {"user_id": admin}}), 403)
        assert c.delete(f"{V3}/credentials/{own.json()['credential']['id']}").status_code == 204

    with cloud.client() as c:
        assert c.delete(f"{V3}/credentials/{cred['id']}").status_code == 204
        _error(c.get(f"{V3}/credentials/{cred['id']}"), 404)
        _error(c.delete(f"{V3}/credentials/{cred['id']}"), 404)


BAD: list[dict[str, Any]] = [
    {"type": "ec2", "blob": "{}"},  # no project, no access
    {"type": "ec2", "blob": "not json", "project_id": "P"},
    {"type": "ec2", "blob": "[" * 100_000, "project_id": "P"},
    {"type": "ec2", "blob": '{"secret": "s"}', "project_id": "P"},
    {"type": "totp", "blob": {"not": "a string"}},
    {"type": "totp"},  # no blob
    {"blob": "x"},  # no type
    {"type": "totp", "blob": "x", "project_id": "nope"},
    {"type": "totp", "blob": "x", "user_id": "nobody"},
]


def test_bad_credentials_are_400(cloud: Cloud) -> None:
    with cloud.client() as c:
        admin = _id(c, "user", "admin")
        project = _id(c, "project", "demo")
        for case in BAD:
            body = {"user_id": admin, **{k: (project if v == "P" else v) for k, v in case.items()}}
            _error(c.post(f"{V3}/credentials", json={"credential": body}), 400)
