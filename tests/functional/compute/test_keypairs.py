"""Key pairs over HTTP: generate vs import, shapes and status codes per microversion, users."""

from __future__ import annotations

import base64
import hashlib
import threading

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kumo.api.context import RequestContext
from kumo.compute import keypairs
from kumo.errors import OverLimit
from tests.conftest import Cloud
from tests.functional.compute.helpers import (
    API,
    BACKENDS,
    database,
    demo_token,
    project_id,
    reader_token,
    user_id,
)


def _public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def test_generate_returns_the_private_key_once(cloud: Cloud) -> None:
    with cloud.client(microversion="2.10") as c:
        resp = c.post(f"{API}/os-keypairs", json={"keypair": {"name": "gen"}})
        assert resp.status_code == 201
        created = resp.json()["keypair"]
        assert set(created) == {"name", "public_key", "fingerprint", "user_id", "type", "private_key"}
        private = serialization.load_pem_private_key(created["private_key"].encode(), password=None)
        derived = (
            private.public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .decode()
        )
        assert created["public_key"].startswith(derived)
        shown = c.get(f"{API}/os-keypairs/gen").json()["keypair"]
    assert "private_key" not in shown
    assert set(shown) == {
        "name",
        "public_key",
        "fingerprint",
        "type",
        "id",
        "user_id",
        "created_at",
        "updated_at",
        "deleted",
        "deleted_at",
    }
    assert shown["deleted"] is False and shown["type"] == "ssh"


def test_import_fingerprint_is_md5_of_the_blob(cloud: Cloud) -> None:
    public = _public_key()
    expected = hashlib.md5(base64.b64decode(public.split()[1])).digest().hex(":")  # noqa: S324
    with cloud.client(microversion="2.2") as c:
        resp = c.post(f"{API}/os-keypairs", json={"keypair": {"name": "imp", "public_key": public}})
        assert resp.status_code == 201
        body = resp.json()["keypair"]
        assert body["fingerprint"] == expected and "private_key" not in body
        listed = c.get(f"{API}/os-keypairs").json()
    assert listed == {
        "keypairs": [
            {"keypair": {"name": "imp", "public_key": public, "fingerprint": expected, "type": "ssh"}}
        ]
    }


def test_microversion_21_shapes_and_codes(cloud: Cloud) -> None:
    with cloud.client(microversion="2.1") as c:
        resp = c.post(f"{API}/os-keypairs", json={"keypair": {"name": "old", "public_key": _public_key()}})
        assert resp.status_code == 200
        assert "type" not in resp.json()["keypair"]
        assert "type" not in c.get(f"{API}/os-keypairs/old").json()["keypair"]
        assert "type" not in c.get(f"{API}/os-keypairs").json()["keypairs"][0]["keypair"]
        typed = c.post(f"{API}/os-keypairs", json={"keypair": {"name": "t", "type": "ssh"}})
        assert typed.status_code == 400  # `type` arrives with 2.2
        assert c.delete(f"{API}/os-keypairs/old").status_code == 202
    with cloud.client(microversion="2.2") as c:
        c.post(f"{API}/os-keypairs", json={"keypair": {"name": "new", "public_key": _public_key()}})
        assert c.delete(f"{API}/os-keypairs/new").status_code == 204
        assert c.delete(f"{API}/os-keypairs/new").status_code == 404


def test_errors(cloud: Cloud) -> None:
    with cloud.client(microversion="2.10") as c:
        assert c.post(f"{API}/os-keypairs", json={"keypair": {"name": "k"}}).status_code == 201
        dup = c.post(f"{API}/os-keypairs", json={"keypair": {"name": "k"}})
        assert dup.status_code == 409
        assert dup.json()["conflictingRequest"]["message"] == "Key pair 'k' already exists."
        bad = c.post(f"{API}/os-keypairs", json={"keypair": {"name": "bad", "public_key": "ssh-rsa notakey"}})
        assert bad.status_code == 400
        assert (
            bad.json()["badRequest"]["message"] == "Keypair data is invalid: failed to generate fingerprint"
        )
        unsafe = c.post(f"{API}/os-keypairs", json={"keypair": {"name": "a/b"}})
        assert unsafe.status_code == 400
        assert c.post(f"{API}/os-keypairs", json={"keypair": {"name": "k", "type": "gpg"}}).status_code == 400
        missing = c.get(f"{API}/os-keypairs/nope")
        assert missing.status_code == 404 and "nope" in missing.json()["itemNotFound"]["message"]


def test_x509_generation(cloud: Cloud) -> None:
    with cloud.client(microversion="2.2") as c:
        resp = c.post(f"{API}/os-keypairs", json={"keypair": {"name": "cert", "type": "x509"}})
    assert resp.status_code == 201
    body = resp.json()["keypair"]
    assert body["type"] == "x509" and body["public_key"].startswith("-----BEGIN CERTIFICATE-----")
    assert len(body["fingerprint"].split(":")) == 20  # SHA-1


def test_keypairs_are_per_user_and_admin_can_name_the_user(cloud: Cloud) -> None:
    with cloud.client(demo_token(cloud), microversion="2.10") as demo:
        assert demo.post(f"{API}/os-keypairs", json={"keypair": {"name": "mine"}}).status_code == 201
    with cloud.client(microversion="2.10") as admin:
        demo_id = user_id(admin, "demo")
        assert admin.get(f"{API}/os-keypairs").json()["keypairs"] == []
        theirs = admin.get(f"{API}/os-keypairs", params={"user_id": demo_id}).json()["keypairs"]
        assert [k["keypair"]["name"] for k in theirs] == ["mine"]
        assert (
            admin.get(f"{API}/os-keypairs/mine", params={"user_id": demo_id}).json()["keypair"]["user_id"]
            == demo_id
        )
        made = admin.post(f"{API}/os-keypairs", json={"keypair": {"name": "given", "user_id": demo_id}})
        assert made.status_code == 201 and made.json()["keypair"]["user_id"] == demo_id
        assert admin.delete(f"{API}/os-keypairs/given", params={"user_id": demo_id}).status_code == 204
        admin_id = user_id(admin, "admin")
    with cloud.client(demo_token(cloud), microversion="2.10") as demo:
        assert demo.get(f"{API}/os-keypairs", params={"user_id": admin_id}).status_code == 403
        assert (
            demo.post(f"{API}/os-keypairs", json={"keypair": {"name": "x", "user_id": admin_id}}).status_code
            == 403
        )
    with cloud.client(reader_token(cloud), microversion="2.10") as reader:
        assert reader.get(f"{API}/os-keypairs").status_code == 200
        assert reader.post(f"{API}/os-keypairs", json={"keypair": {"name": "r"}}).status_code == 403


def test_paging_from_235(cloud: Cloud) -> None:
    with cloud.client(microversion="2.35") as c:
        for name in ("a", "b", "c"):
            c.post(f"{API}/os-keypairs", json={"keypair": {"name": name, "public_key": _public_key()}})
        page = c.get(f"{API}/os-keypairs", params={"limit": 2}).json()
        assert [k["keypair"]["name"] for k in page["keypairs"]] == ["a", "b"]
        assert "marker=b" in page["keypairs_links"][0]["href"]
        rest = c.get(f"{API}/os-keypairs", params={"limit": 2, "marker": "b"}).json()
        assert [k["keypair"]["name"] for k in rest["keypairs"]] == ["c"] and "keypairs_links" not in rest
        assert c.get(f"{API}/os-keypairs", params={"marker": "zzz"}).status_code == 400


@pytest.mark.parametrize("backend", BACKENDS)
def test_user_id_longer_than_a_user_id_is_a_400(request: pytest.FixtureRequest, backend: str) -> None:
    """An admin's keypair for another user: a user_id past the 64-character owner column was a
    500 on PostgreSQL."""
    cloud: Cloud = request.getfixturevalue("pg_cloud" if backend == "postgresql" else "cloud")
    with cloud.client(microversion="2.10") as c:
        for user in ("u" * 65, ""):
            resp = c.post(f"{API}/os-keypairs", json={"keypair": {"name": "k", "user_id": user}})
            assert resp.status_code == 400, resp.text
            assert "user_id" in resp.json()["badRequest"]["message"]
        ok = c.post(f"{API}/os-keypairs", json={"keypair": {"name": "k", "user_id": "u" * 64}})
        assert ok.status_code == 201, ok.text


@pytest.mark.postgres
def test_parallel_creates_stop_at_the_key_pairs_quota(pg_cloud: Cloud) -> None:
    """20 users' requests at once, one user, a quota of 3 key pairs: 3 created, the rest 403."""
    with pg_cloud.client() as admin:
        project = project_id(admin, "demo")
        resp = admin.put(f"{API}/os-quota-sets/{project}", json={"quota_set": {"key_pairs": 3}})
        assert resp.status_code == 200, resp.text
    token = demo_token(pg_cloud)
    public = [_public_key() for _ in range(20)]
    start = threading.Barrier(len(public))
    codes: list[int] = []

    def create(index: int) -> None:
        with httpx.Client(base_url=pg_cloud.url, headers={"X-Auth-Token": token}, timeout=60) as c:
            start.wait()
            body = {"keypair": {"name": f"k{index}", "public_key": public[index]}}
            codes.append(c.post(f"{API}/os-keypairs", json=body).status_code)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(public))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] * 3 + [403] * 17, codes
    with pg_cloud.client(token=token) as c:
        assert len(c.get(f"{API}/os-keypairs").json()["keypairs"]) == 3


@pytest.mark.postgres
def test_a_key_pair_create_waits_for_the_one_in_flight(pg_cloud: Cloud) -> None:
    """Deterministic: while one create of the user's holds the lock with the quota's last key
    pair written but not committed, another waits, then counts it and is refused."""
    with pg_cloud.client() as admin:
        project = project_id(admin, "demo")
        resp = admin.put(f"{API}/os-quota-sets/{project}", json={"quota_set": {"key_pairs": 1}})
        assert resp.status_code == 200, resp.text
        demo = user_id(admin, "demo")
    ctx = RequestContext(user_id=demo, project_id=project, roles=("member",))
    db = database(pg_cloud)
    try:
        outcome: list[BaseException | None] = []

        def second() -> None:
            try:
                with db.transaction() as s:
                    keypairs.create_keypair(
                        s, ctx, keypairs.CreateRequest("second", _public_key(), "ssh", None)
                    )
                outcome.append(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
                outcome.append(exc)

        with db.transaction() as holder:
            keypairs.create_keypair(holder, ctx, keypairs.CreateRequest("first", _public_key(), "ssh", None))
            waiting = threading.Thread(target=second)
            waiting.start()
            waiting.join(0.5)
            assert waiting.is_alive(), outcome
        waiting.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], OverLimit), outcome
    finally:
        db.dispose()
