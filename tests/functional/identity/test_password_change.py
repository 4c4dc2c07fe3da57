"""A password change, self-service or by an admin, revokes every token the user held (Keystone
records a revocation event by user id); tokens issued afterwards work."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kumo.db import Database
from kumo.deploy import init_cloud
from kumo.errors import Unauthorized
from kumo.identity import revocation, service
from kumo.identity.lockout import Lockout
from kumo.server import ThreadedServer
from kumo.tokens import Revocations, TokenProvider
from kumo.wiring import build_runtime
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, Cloud, wait_for
from tests.functional.compute.helpers import BACKENDS, either_cloud

V3 = "/identity/v3"


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


def _login(cloud: Cloud, name: str, password: str) -> httpx.Response:
    user = {"name": name, "domain": {"id": "default"}, "password": password}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}
    return httpx.post(f"{cloud.url}{V3}/auth/tokens", json=body)


def _token(cloud: Cloud, name: str, password: str) -> str:
    resp = _login(cloud, name, password)
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


def _new_user(cloud: Cloud, password: str) -> dict[str, Any]:
    with cloud.client() as admin:
        resp = admin.post(
            f"{V3}/users", json={"user": {"name": f"pw-{uuid.uuid4().hex[:8]}", "password": password}}
        )
    assert resp.status_code == 201, resp.text
    user: dict[str, Any] = resp.json()["user"]
    return user


def _reads_self(url: str, user_id: str, token: str) -> int:
    """The status of the user reading their own record with `token`."""
    return httpx.get(f"{url}{V3}/users/{user_id}", headers={"X-Auth-Token": token}).status_code


def test_admin_setting_a_password_revokes_the_users_tokens(any_cloud: Cloud) -> None:
    user = _new_user(any_cloud, "old-secret")
    old = _token(any_cloud, user["name"], "old-secret")
    admin_token = any_cloud.token()
    assert _reads_self(any_cloud.url, user["id"], old) == 200

    with any_cloud.client(admin_token) as admin:
        resp = admin.patch(f"{V3}/users/{user['id']}", json={"user": {"password": "new-secret"}})
    assert resp.status_code == 200, resp.text

    assert _reads_self(any_cloud.url, user["id"], old) == 401
    assert _login(any_cloud, user["name"], "old-secret").status_code == 401
    new = _token(any_cloud, user["name"], "new-secret")
    assert _reads_self(any_cloud.url, user["id"], new) == 200
    with any_cloud.client(admin_token) as admin:  # the admin's own token is untouched
        assert admin.get(f"{V3}/users/{user['id']}").status_code == 200


def test_changing_ones_own_password_revokes_ones_tokens(any_cloud: Cloud) -> None:
    user = _new_user(any_cloud, "old-secret")
    old = _token(any_cloud, user["name"], "old-secret")
    other = _new_user(any_cloud, "other-secret")
    bystander = _token(any_cloud, other["name"], "other-secret")

    change = {"user": {"password": "new-secret", "original_password": "old-secret"}}
    resp = httpx.post(
        f"{any_cloud.url}{V3}/users/{user['id']}/password", json=change, headers={"X-Auth-Token": old}
    )
    assert resp.status_code == 204, resp.text

    assert _reads_self(any_cloud.url, user["id"], old) == 401
    new = _token(any_cloud, user["name"], "new-secret")
    assert _reads_self(any_cloud.url, user["id"], new) == 200
    assert _reads_self(any_cloud.url, other["id"], bystander) == 200


def test_a_refused_password_change_revokes_nothing(cloud: Cloud) -> None:
    user = _new_user(cloud, "old-secret")
    old = _token(cloud, user["name"], "old-secret")
    change = {"user": {"password": "new-secret", "original_password": "wrong"}}
    resp = httpx.post(f"{cloud.url}{V3}/users/{user['id']}/password", json=change)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == 401
    assert _reads_self(cloud.url, user["id"], old) == 200
    assert _login(cloud, user["name"], "old-secret").status_code == 201


@pytest.fixture
def second_worker(pg_cloud: Cloud) -> Iterator[str]:
    """Another API worker (its own runtime and revocation cache) over pg_cloud's database."""
    rt = build_runtime(pg_cloud.settings, Database(pg_cloud.settings.resolved_database_url))
    server = ThreadedServer(rt).start()
    yield server.url
    server.stop()
    rt.db.dispose()


@pytest.mark.postgres
def test_other_api_workers_refuse_the_old_token_too(pg_cloud: Cloud, second_worker: str) -> None:
    user = _new_user(pg_cloud, "old-secret")
    old = _token(pg_cloud, user["name"], "old-secret")
    assert _reads_self(second_worker, user["id"], old) == 200  # its revocations are now cached

    change = {"user": {"password": "new-secret", "original_password": "old-secret"}}
    assert httpx.post(f"{pg_cloud.url}{V3}/users/{user['id']}/password", json=change).status_code == 204

    assert _reads_self(pg_cloud.url, user["id"], old) == 401  # the worker that wrote it: at once
    wait_for(lambda: _reads_self(second_worker, user["id"], old) == 401, timeout=10)


@pytest.fixture
def stale_worker(any_cloud: Cloud) -> Iterator[tuple[Database, TokenProvider]]:
    """Another API worker's identity pieces over any_cloud's database, whose revocation cache
    is refreshed only when told to (as one is, for up to 2 s, after another worker wrote)."""
    database = Database(any_cloud.settings.resolved_database_url)

    def load_revoked() -> Revocations:
        with database.read() as session:
            return revocation.load(session, any_cloud.settings.token_ttl_seconds)

    key = any_cloud.settings.secret("token_key", generate="fernet")
    yield database, TokenProvider(key, any_cloud.settings.token_ttl_seconds, load_revoked, 3600)
    database.dispose()


def _rescope(database: Database, tokens: TokenProvider, token: str) -> service.IssuedToken:
    auth = {"identity": {"methods": ["token"], "token": {"id": token}}, "scope": "unscoped"}
    return service.login(database, tokens, auth, Lockout())


def _revoked_by_password_change(cloud: Cloud, tokens: TokenProvider) -> tuple[dict[str, Any], str]:
    """A user's token, seen valid by the stale worker, then revoked by a password change."""
    user = _new_user(cloud, "old-secret")
    old = _token(cloud, user["name"], "old-secret")
    tokens.verify(old)  # the stale worker's revocations are loaded now, before the change
    change = {"user": {"password": "new-secret", "original_password": "old-secret"}}
    assert httpx.post(f"{cloud.url}{V3}/users/{user['id']}/password", json=change).status_code == 204
    tokens.verify(old)  # the stale worker still accepts it
    return user, old


def test_a_revoked_token_cannot_be_rescoped_on_a_stale_worker(
    any_cloud: Cloud, stale_worker: tuple[Database, TokenProvider]
) -> None:
    database, tokens = stale_worker
    _, old = _revoked_by_password_change(any_cloud, tokens)
    with pytest.raises(Unauthorized):
        _rescope(database, tokens, old)


def test_a_token_rescoped_on_a_stale_worker_falls_with_its_parent(
    any_cloud: Cloud, stale_worker: tuple[Database, TokenProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revocation commits between the rescope's check of it and the new token: the new
    token keeps its parent's issue time, so the revocation covers it once the cache refreshes."""
    database, tokens = stale_worker
    user, old = _revoked_by_password_change(any_cloud, tokens)
    monkeypatch.setattr(revocation, "revoked_now", lambda *args: False)
    rescoped = _rescope(database, tokens, old)
    assert rescoped.data.expires_at == tokens.verify(old).expires_at
    tokens.refresh_soon()
    with pytest.raises(Unauthorized):
        tokens.verify(rescoped.token)
    assert _reads_self(any_cloud.url, user["id"], rescoped.token) == 401


def test_bootstrap_with_a_new_admin_password_revokes_and_unlocks(cloud: Cloud) -> None:
    """keystone-manage bootstrap resets the admin: a new password ends the old tokens and lifts
    a lockout; bootstrapping again with the same password changes nothing."""
    cloud.settings.lockout_failure_attempts = 2
    before = cloud.token()
    init_cloud(cloud.settings, ADMIN_PASSWORD, DEMO_PASSWORD).dispose()  # the same password
    admin_id = httpx.get(
        f"{cloud.url}{V3}/auth/tokens", headers={"X-Auth-Token": before, "X-Subject-Token": before}
    ).json()["token"]["user"]["id"]
    assert _reads_self(cloud.url, admin_id, before) == 200
    for _ in range(2):
        assert _login(cloud, "admin", "wrong").status_code == 401
    assert "locked" in _login(cloud, "admin", ADMIN_PASSWORD).json()["error"]["message"]

    init_cloud(cloud.settings, "new-admin-secret", DEMO_PASSWORD).dispose()

    # Written by another process's runtime: this worker sees it at its next refresh.
    wait_for(lambda: _reads_self(cloud.url, admin_id, before) == 401, timeout=10)
    assert _reads_self(cloud.url, admin_id, _token(cloud, "admin", "new-admin-secret")) == 200
