"""Failed logins tell nothing about who exists: every refusal costs one password check (a dummy
hash for a user that does not exist, is disabled, has no password or is named in another
domain) and answers the same. With Keystone's lockout configured, consecutive failures lock a
user, and an unknown user is counted and locked alike."""

from __future__ import annotations

import datetime as dt
import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from kumo.db import Database
from kumo.identity import passwords
from kumo.identity.models import AuthFailure
from tests.conftest import ADMIN_PASSWORD, Cloud
from tests.functional.compute.helpers import BACKENDS, either_cloud

V3 = "/identity/v3"
AUTH_REQUIRED = "The request you have made requires authentication."
LOCKED = re.compile(r"^The account is locked for user: (?P<id>.+)\.$")


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _auth(user: dict[str, Any], password: str) -> dict[str, Any]:
    return {
        "auth": {"identity": {"methods": ["password"], "password": {"user": {**user, "password": password}}}}
    }


def _by_name(name: str, domain: str = "default") -> dict[str, Any]:
    return {"name": name, "domain": {"id": domain}}


def _login(cloud: Cloud, user: dict[str, Any], password: str) -> httpx.Response:
    return httpx.post(f"{cloud.url}{V3}/auth/tokens", json=_auth(user, password))


def _new_user(cloud: Cloud, **attrs: Any) -> dict[str, Any]:
    with cloud.client() as admin:
        resp = admin.post(f"{V3}/users", json={"user": {"name": _unique("u"), **attrs}})
    assert resp.status_code == 201, resp.text
    user: dict[str, Any] = resp.json()["user"]
    return user


def _message(resp: httpx.Response) -> str:
    assert resp.status_code == 401, resp.text
    error = resp.json()["error"]
    assert error["code"] == 401
    return str(error["message"])


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every password the API hashes (the in-process server calls the scrypt step here)."""
    seen: list[bytes] = []
    derive = passwords._derive

    def counting(password: bytes, *args: Any) -> bytes:
        seen.append(password)
        return derive(password, *args)

    monkeypatch.setattr(passwords, "_derive", counting)
    return seen


# --- the same cost and answer for every refusal ---------------------------------------------


def _refusals(cloud: Cloud) -> dict[str, dict[str, Any]]:
    """A login refused for each reason, by the user reference it sends."""
    known = _new_user(cloud, password="right-secret")
    disabled = _new_user(cloud, password="right-secret", enabled=False)
    passwordless = _new_user(cloud)
    return {
        "wrong password, by name": _by_name(known["name"]),
        "wrong password, by id": {"id": known["id"]},
        "unknown name": _by_name(_unique("nobody")),
        "unknown id": {"id": uuid.uuid4().hex},
        "known name in another domain": _by_name(known["name"], domain="elsewhere"),
        "disabled user": _by_name(disabled["name"]),
        "user without a password": _by_name(passwordless["name"]),
    }


@pytest.mark.parametrize("lockout", [None, 5], ids=["no lockout", "lockout"])
def test_every_refused_login_checks_one_password(
    cloud: Cloud, hashes: list[bytes], lockout: int | None
) -> None:
    cloud.settings.lockout_failure_attempts = lockout
    for reason, user in _refusals(cloud).items():
        hashes.clear()
        password = "right-secret" if reason == "disabled user" else "wrong-secret"
        assert _message(_login(cloud, user, password)) == AUTH_REQUIRED, reason
        assert hashes == [password.encode()], reason


def test_a_refused_password_change_checks_one_password(cloud: Cloud, hashes: list[bytes]) -> None:
    known = _new_user(cloud, password="right-secret")
    change = {"user": {"password": "new-secret", "original_password": "wrong-secret"}}
    for user_id in (known["id"], uuid.uuid4().hex):
        hashes.clear()
        resp = httpx.post(f"{cloud.url}{V3}/users/{user_id}/password", json=change)
        assert _message(resp) == AUTH_REQUIRED
        assert hashes == [b"wrong-secret"]


def _time_ms(attempt: Callable[[], httpx.Response], samples: list[float]) -> None:
    started = time.perf_counter()
    resp = attempt()
    samples.append((time.perf_counter() - started) * 1000)
    assert resp.status_code == 401


def test_a_wrong_password_and_an_unknown_user_take_as_long(cloud: Cloud) -> None:
    """Coarse, for a noisy machine: medians of interleaved tries within a factor of two (before,
    a wrong password took about 49 ms and an unknown user 20 ms)."""
    known, unknown = _by_name("admin"), _by_name(_unique("nobody"))
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    with httpx.Client(base_url=cloud.url) as client:
        for _ in range(2):  # warm the connection and the code paths
            client.post(f"{V3}/auth/tokens", json=_auth(known, "wrong"))
            client.post(f"{V3}/auth/tokens", json=_auth(unknown, "wrong"))
        for _ in range(15):
            _time_ms(lambda: client.post(f"{V3}/auth/tokens", json=_auth(known, "wrong")), timings["known"])
            _time_ms(
                lambda: client.post(f"{V3}/auth/tokens", json=_auth(unknown, "wrong")), timings["unknown"]
            )
    ratio = statistics.median(timings["known"]) / statistics.median(timings["unknown"])
    assert 0.5 <= ratio <= 2.0, timings


# --- the lockout ----------------------------------------------------------------------------


def _lock_after(cloud: Cloud, attempts: int, duration: int = 1800) -> None:
    cloud.settings.lockout_failure_attempts = attempts
    cloud.settings.lockout_duration = duration


def _failures(cloud: Cloud, user: dict[str, Any], times: int) -> None:
    for _ in range(times):
        assert _message(_login(cloud, user, "wrong-secret")) == AUTH_REQUIRED


def _locked_id(resp: httpx.Response) -> str:
    match = LOCKED.match(_message(resp))
    assert match, resp.text
    return match["id"]


def _failure_rows(cloud: Cloud) -> int:
    database = Database(cloud.settings.resolved_database_url)
    try:
        with database.read() as session:
            return int(session.scalar(select(func.count()).select_from(AuthFailure)) or 0)
    finally:
        database.dispose()


def test_no_lockout_by_default(cloud: Cloud) -> None:
    user = _new_user(cloud, password="right-secret")
    _failures(cloud, _by_name(user["name"]), 10)
    _failures(cloud, _by_name(_unique("nobody")), 3)
    assert _login(cloud, _by_name(user["name"]), "right-secret").status_code == 201
    assert _failure_rows(cloud) == 0  # nothing written


def test_consecutive_failures_lock_the_account(any_cloud: Cloud, hashes: list[bytes]) -> None:
    _lock_after(any_cloud, 3)
    user = _new_user(any_cloud, password="right-secret")
    _failures(any_cloud, _by_name(user["name"]), 3)
    hashes.clear()
    assert _locked_id(_login(any_cloud, _by_name(user["name"]), "right-secret")) == user["id"]
    assert _locked_id(_login(any_cloud, {"id": user["id"]}, "right-secret")) == user["id"]
    assert hashes == []  # a locked account checks no password
    # Changing the password needs a login too.
    change = {"user": {"password": "new-secret", "original_password": "right-secret"}}
    resp = httpx.post(f"{any_cloud.url}{V3}/users/{user['id']}/password", json=change)
    assert _locked_id(resp) == user["id"]
    # Others are not affected.
    assert _login(any_cloud, _by_name("admin"), ADMIN_PASSWORD).status_code == 201


def test_an_unknown_user_is_locked_alike(any_cloud: Cloud, hashes: list[bytes]) -> None:
    _lock_after(any_cloud, 3)
    name, user_id = _unique("nobody"), uuid.uuid4().hex
    _failures(any_cloud, _by_name(name), 3)
    _failures(any_cloud, {"id": user_id}, 3)
    hashes.clear()
    stand_in = _locked_id(_login(any_cloud, _by_name(name), "any"))
    assert re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", stand_in)  # a uuid4().hex
    assert _locked_id(_login(any_cloud, _by_name(name), "other")) == stand_in  # and a stable one
    assert _locked_id(_login(any_cloud, {"id": user_id}, "any")) == user_id
    assert hashes == []
    with any_cloud.client() as admin:
        assert admin.get(f"{V3}/users/{stand_in}").status_code == 404


@pytest.mark.parametrize("user_id", ["x" * 300, "\x07bell"])
def test_an_id_that_cannot_exist_is_counted_too(any_cloud: Cloud, user_id: str) -> None:
    _lock_after(any_cloud, 1)
    assert _message(_login(any_cloud, {"id": user_id}, "wrong")) == AUTH_REQUIRED
    assert _locked_id(_login(any_cloud, {"id": user_id}, "wrong")) == user_id


def test_success_resets_the_count(cloud: Cloud) -> None:
    _lock_after(cloud, 3)
    user = _by_name(_new_user(cloud, password="right-secret")["name"])
    _failures(cloud, user, 2)
    assert _login(cloud, user, "right-secret").status_code == 201
    _failures(cloud, user, 2)
    assert _login(cloud, user, "right-secret").status_code == 201


def test_a_right_password_refused_for_its_scope_is_no_failure(cloud: Cloud) -> None:
    """The password is right, the scope is not the user's: refused, but not counted (as in
    Keystone, where the password check forgets the failures before the scope is looked at)."""
    _lock_after(cloud, 2)
    user = _by_name(_new_user(cloud, password="right-secret")["name"])
    scoped = _auth(user, "right-secret")
    scoped["auth"]["scope"] = {"project": {"name": "admin", "domain": {"id": "default"}}}
    _failures(cloud, user, 1)
    for _ in range(3):
        resp = httpx.post(f"{cloud.url}{V3}/auth/tokens", json=scoped)
        assert resp.status_code == 401 and not LOCKED.match(_message(resp)), resp.text
    _failures(cloud, user, 1)  # one failure since the last right password: not locked
    assert _login(cloud, user, "right-secret").status_code == 201


def _age_failures(cloud: Cloud, by: dt.timedelta) -> None:
    """Move every recorded failure `by` into the past (instead of sleeping through a duration)."""
    database = Database(cloud.settings.resolved_database_url)
    with database.transaction() as session:
        for failure in session.scalars(select(AuthFailure)):
            failure.failed_auth_at -= by
    database.dispose()


def test_the_lock_ends_after_the_duration(any_cloud: Cloud) -> None:
    _lock_after(any_cloud, 2, duration=60)
    user = _new_user(any_cloud, password="right-secret")
    _failures(any_cloud, _by_name(user["name"]), 2)
    assert _locked_id(_login(any_cloud, _by_name(user["name"]), "right-secret")) == user["id"]
    _age_failures(any_cloud, dt.timedelta(seconds=61))
    assert _login(any_cloud, _by_name(user["name"]), "right-secret").status_code == 201
    # Failures older than the duration are forgotten: the count starts again.
    _failures(any_cloud, _by_name(user["name"]), 1)
    _age_failures(any_cloud, dt.timedelta(seconds=61))
    _failures(any_cloud, _by_name(user["name"]), 1)
    assert _login(any_cloud, _by_name(user["name"]), "right-secret").status_code == 201


def test_forgotten_failures_do_not_pile_up(any_cloud: Cloud) -> None:
    _lock_after(any_cloud, 3, duration=1800)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    database = Database(any_cloud.settings.resolved_database_url)
    with database.transaction() as session:
        for age in (dt.timedelta(hours=1), dt.timedelta(days=3), dt.timedelta(seconds=10)):
            session.add(AuthFailure(subject=uuid.uuid4().hex, failed_auth_count=2, failed_auth_at=now - age))
    database.dispose()
    _failures(any_cloud, _by_name(_unique("nobody")), 1)
    assert _failure_rows(any_cloud) == 2  # the recent one and the new one


def test_unknown_names_do_not_pile_up_when_locks_last(any_cloud: Cloud) -> None:
    """With lockout_duration 0 a user stays locked until an admin steps in, but the failures of
    names and ids that are no user's are forgotten after a day: made-up names cannot grow the
    table without bound."""
    _lock_after(any_cloud, 3, duration=0)
    user = _new_user(any_cloud, password="right-secret")
    _failures(any_cloud, _by_name(user["name"]), 3)
    _failures(any_cloud, _by_name(_unique("nobody")), 3)
    _failures(any_cloud, {"id": uuid.uuid4().hex}, 1)
    _age_failures(any_cloud, dt.timedelta(days=1, seconds=1))
    _failures(any_cloud, _by_name(_unique("nobody")), 1)  # a recent one, kept
    assert _failure_rows(any_cloud) == 2  # the user's and the recent one
    assert _locked_id(_login(any_cloud, _by_name(user["name"]), "right-secret")) == user["id"]


@pytest.mark.postgres
def test_parallel_wrong_passwords_check_no_more_than_the_limit(
    pg_cloud: Cloud, parallel: ThreadPoolExecutor, hashes: list[bytes]
) -> None:
    """Each attempt is counted before its password is checked: twelve at once against a lockout
    of three check three passwords, and the other nine are refused as locked."""
    _lock_after(pg_cloud, 3)
    known = _by_name(_new_user(pg_cloud, password="right-secret")["name"])
    for user in (known, _by_name(_unique("nobody"))):
        hashes.clear()
        logins = [parallel.submit(_login, pg_cloud, user, "wrong") for _ in range(12)]
        answers = [_message(login.result()) for login in logins]
        assert len(hashes) == 3, (user, answers)
        assert answers.count(AUTH_REQUIRED) == 3, answers
        assert len({a for a in answers if LOCKED.match(a)}) == 1, answers


@pytest.mark.parametrize("unlock", [{"enabled": True}, {"password": "new-secret"}])
def test_an_admin_unlocks_by_updating_the_user(any_cloud: Cloud, unlock: dict[str, Any]) -> None:
    _lock_after(any_cloud, 2, duration=0)  # locked until an admin steps in
    user = _new_user(any_cloud, password="right-secret")
    _failures(any_cloud, _by_name(user["name"]), 2)
    assert _locked_id(_login(any_cloud, _by_name(user["name"]), "right-secret")) == user["id"]
    with any_cloud.client() as admin:
        assert admin.patch(f"{V3}/users/{user['id']}", json={"user": unlock}).status_code == 200
    password = unlock.get("password", "right-secret")
    assert _login(any_cloud, _by_name(user["name"]), password).status_code == 201


@pytest.fixture
def parallel() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=12) as pool:
        yield pool


def test_concurrent_failures_are_all_counted(any_cloud: Cloud, parallel: ThreadPoolExecutor) -> None:
    """Twelve wrong passwords at once lock an account that locks at twelve: none is lost to a
    read-modify-write race between requests."""
    _lock_after(any_cloud, 12)
    user = _new_user(any_cloud, password="right-secret")
    wrong = list(parallel.map(lambda _: _login(any_cloud, _by_name(user["name"]), "wrong"), range(12)))
    assert [r.status_code for r in wrong] == [401] * 12
    assert _locked_id(_login(any_cloud, _by_name(user["name"]), "right-secret")) == user["id"]


def test_concurrent_failures_beside_forgotten_ones_all_answer(
    any_cloud: Cloud, parallel: ThreadPoolExecutor
) -> None:
    """Failures that also drop forgotten rows, at once: none waits on another (no deadlock)."""
    _lock_after(any_cloud, 3, duration=1)
    names = [_unique("nobody") for _ in range(12)]
    for name in names:
        _failures(any_cloud, _by_name(name), 1)
    time.sleep(1.2)
    again = list(parallel.map(lambda name: _login(any_cloud, _by_name(name), "wrong"), names))
    assert [_message(r) for r in again] == [AUTH_REQUIRED] * 12


def test_an_unknown_name_counts_alike_whichever_way_its_domain_is_named(cloud: Cloud) -> None:
    """As a real user's failures count by id, an unknown name's count by the domain's id: naming
    the domain by id, by name or not at all does not give the name fresh attempts."""
    _lock_after(cloud, 3)
    with cloud.client() as admin:
        other = admin.post(f"{V3}/domains", json={"domain": {"name": _unique("d")}}).json()["domain"]
    name = _unique("nobody")
    for ref in (
        {"name": name, "domain": {"id": "default"}},
        {"name": name, "domain": {"name": "Default"}},
        {"name": name},
    ):
        assert _message(_login(cloud, ref, "wrong")) == AUTH_REQUIRED
    locked = _locked_id(_login(cloud, {"name": name, "domain": {"name": "Default"}}, "wrong"))
    # The same name in another domain is another subject.
    in_other = {"name": name, "domain": {"id": other["id"]}}
    assert _message(_login(cloud, in_other, "wrong")) == AUTH_REQUIRED
    _failures(cloud, {"name": name, "domain": {"name": other["name"]}}, 2)
    assert _locked_id(_login(cloud, in_other, "wrong")) != locked
