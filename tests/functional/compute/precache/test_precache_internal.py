"""The agents' precache routes (/internal/v1): the agent token, the host a cache report is
about, and bad values answered 4xx (never 500), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.compute import hosts
from kumo.compute.precache import service
from kumo.db import Database
from tests.conftest import Cloud

IMAGE = "11111111-1111-4111-8111-111111111111"


def _headers(cloud: Cloud) -> dict[str, str]:
    return {AGENT_TOKEN_HEADER: cloud.settings.secret("agent_token")}


def _register(cloud: Cloud, name: str) -> None:
    database = Database(cloud.settings.resolved_database_url)
    try:
        with database.transaction() as session:
            hosts.register_host(session, name, vcpus=4, memory_mb=4096, disk_gb=40)
            session.flush()
            hosts.heartbeat(session, name)
    finally:
        database.dispose()


def _held(cloud: Cloud, name: str) -> frozenset[str]:
    database = Database(cloud.settings.resolved_database_url)
    try:
        with database.read() as session:
            return service.holding(session, [name]).get(name, frozenset())
    finally:
        database.dispose()


def _cache_reports(cloud: Cloud) -> None:
    url = f"{cloud.url}/internal/v1/hosts/{{}}/image-cache"
    body = {"images": [IMAGE]}
    _register(cloud, "pi-1")
    unauthorized = httpx.put(url.format("pi-1"), json=body, headers={AGENT_TOKEN_HEADER: "wrong"})
    assert unauthorized.status_code == 401, unauthorized.text
    assert _held(cloud, "pi-1") == frozenset()
    assert httpx.put(url.format("pi-1"), json=body, headers=_headers(cloud)).status_code == 204
    assert _held(cloud, "pi-1") == {IMAGE}
    # a host that is no compute host of the cloud: 404, nothing stored (a name longer than the
    # column too: 404, not the database's error)
    for name in ("pi-unknown", "x" * 300):
        resp = httpx.put(url.format(name), json=body, headers=_headers(cloud))
        assert resp.status_code == 404, (name[:20], resp.text)
        assert resp.json()["itemNotFound"]["code"] == 404
    for bad in ({"images": "x"}, {"images": ["y" * 37]}, {}):
        resp = httpx.put(url.format("pi-1"), json=bad, headers=_headers(cloud))
        assert resp.status_code == 400, (bad, resp.text)


def _progress_bounds(cloud: Cloud) -> None:
    url = f"{cloud.url}/internal/v1/precache/progress"
    body = {"job_id": "no-such-job", "image_id": IMAGE, "host": "pi-1", "source": "origin", "bytes": 1}
    # an attempt or a byte count beyond the database's integers: 400, not 500
    for bad in ({"attempt": 2**70}, {"bytes": 2**70}, {"attempt": 0}):
        resp = httpx.put(url, json={**body, **bad}, headers=_headers(cloud))
        assert resp.status_code == 400, (bad, resp.text)
    resp = httpx.put(url, json={**body, "attempt": 3}, headers=_headers(cloud))
    assert resp.status_code == 409, resp.text


def test_cache_reports_check_the_token_and_the_host(cloud: Cloud) -> None:
    _cache_reports(cloud)


@pytest.mark.postgres
def test_cache_reports_check_the_token_and_the_host_on_postgresql(pg_cloud: Cloud) -> None:
    _cache_reports(pg_cloud)


def test_progress_values_out_of_range_are_400(cloud: Cloud) -> None:
    _progress_bounds(cloud)


@pytest.mark.postgres
def test_progress_values_out_of_range_are_400_on_postgresql(pg_cloud: Cloud) -> None:
    _progress_bounds(pg_cloud)


@pytest.mark.postgres
def test_two_first_cache_reports_at_once_both_succeed(pg_cloud: Cloud) -> None:
    """A host's first report is in flight (not committed) when another arrives (its
    registration's and its loop's): the second waits for it and updates it, no 500."""
    _register(pg_cloud, "pi-2")
    database = Database(pg_cloud.settings.resolved_database_url)
    other = "22222222-2222-4222-8222-222222222222"
    inserted = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with database.transaction() as session:
                service.report_cache(session, "pi-2", [IMAGE])
                session.flush()
                inserted.set()
                time.sleep(0.5)  # the second report is waiting on this row meanwhile
        except BaseException as exc:  # noqa: BLE001 - the test's answer
            errors.append(exc)
            inserted.set()

    def second() -> None:
        inserted.wait(10)
        try:
            with database.transaction() as session:
                service.report_cache(session, "pi-2", [other])
        except BaseException as exc:  # noqa: BLE001 - the test's answer
            errors.append(exc)

    try:
        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == [], [repr(e) for e in errors]
        assert _held(pg_cloud, "pi-2") == {other}  # the later report's ids
    finally:
        database.dispose()
