"""Quota under concurrency: parallel creates of one project never pass its quota, on SQLite and
PostgreSQL, for single creates, multi-creates and each of instances, cores and RAM."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import OperationalError

from kumo.compute import quotas
from kumo.compute.models import Quota
from kumo.db import Database
from kumo.errors import OverLimit
from tests.conftest import Cloud
from tests.functional.compute.helpers import API, BACKENDS, database, demo_token, either_cloud, project_id
from tests.functional.helpers import make_flavor, upload_image


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


def _prepare(cloud: Cloud, limits: dict[str, int]) -> tuple[str, str, str]:
    """The demo project's quota set to `limits`; returns (flavor, image, demo token)."""
    with cloud.client() as admin:
        flavor, image = make_flavor(admin, "q1"), upload_image(admin)
        project = project_id(admin, "demo")
        resp = admin.put(f"{API}/os-quota-sets/{project}", json={"quota_set": limits})
        assert resp.status_code == 200, resp.text
    return flavor, image, demo_token(cloud)


def _create_in_parallel(cloud: Cloud, token: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """POST every body at once, each from a thread and a connection of its own."""
    start = threading.Barrier(len(bodies))
    responses: list[httpx.Response | None] = [None] * len(bodies)

    def create(index: int) -> None:
        with httpx.Client(base_url=cloud.url, headers={"X-Auth-Token": token}, timeout=60) as c:
            start.wait()
            responses[index] = c.post(f"{API}/servers", json={"server": bodies[index]})

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r is not None for r in responses)
    return [r for r in responses if r is not None]


def _servers_of_demo(cloud: Cloud, token: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=cloud.url, headers={"X-Auth-Token": token}, timeout=30) as c:
        resp = c.get(f"{API}/servers", params={"limit": 1000})
    assert resp.status_code == 200, resp.text
    return list(resp.json()["servers"])


def _assert_refused_by_quota(responses: list[httpx.Response], resource: str) -> None:
    for resp in responses:
        assert resp.status_code == 403, resp.text
        message = resp.json()["forbidden"]["message"]
        assert message.startswith(f"Quota exceeded for {resource}: Requested "), message


@pytest.mark.parametrize(
    ("resource", "limits"),
    [
        ("instances", {"instances": 5}),
        ("cores", {"instances": -1, "cores": 5}),
        ("ram", {"instances": -1, "ram": 5 * 512}),
    ],
)
def test_parallel_creates_stop_at_the_quota(any_cloud: Cloud, resource: str, limits: dict[str, int]) -> None:
    flavor, image, token = _prepare(any_cloud, limits)
    body = {"name": "vm", "flavorRef": flavor, "imageRef": image, "networks": "none"}
    responses = _create_in_parallel(any_cloud, token, [body] * 40)
    accepted = [r for r in responses if r.status_code == 202]
    assert len(accepted) == 5, [r.status_code for r in responses]
    _assert_refused_by_quota([r for r in responses if r.status_code != 202], resource)
    assert len(_servers_of_demo(any_cloud, token)) == 5


def test_parallel_multi_creates_stop_at_the_quota(any_cloud: Cloud) -> None:
    flavor, image, token = _prepare(any_cloud, {"instances": 5})
    body = {"name": "vm", "flavorRef": flavor, "imageRef": image, "networks": "none", "min_count": 2}
    responses = _create_in_parallel(any_cloud, token, [body] * 8)
    accepted = [r for r in responses if r.status_code == 202]
    # Two requests of two fit in five; a third would make six.
    assert len(accepted) == 2, [r.status_code for r in responses]
    _assert_refused_by_quota([r for r in responses if r.status_code != 202], "instances")
    assert len(_servers_of_demo(any_cloud, token)) == 4


@pytest.mark.postgres
def test_the_quota_lock_holds_one_project_only(pg_database_url: str) -> None:
    """While a create of project A holds its lock, B's creates go on and A's next one waits."""
    db = Database(pg_database_url)
    try:
        with db.transaction() as holder:
            quotas.lock_project(holder, "project-a")
            with db.transaction() as other:
                other.execute(text("SET LOCAL lock_timeout = '200ms'"))
                quotas.lock_project(other, "project-b")
            with pytest.raises(OperationalError, match="lock timeout"), db.transaction() as same:
                same.execute(text("SET LOCAL lock_timeout = '200ms'"))
                quotas.lock_project(same, "project-a")
        with db.transaction() as after:  # released with the holder's commit
            after.execute(text("SET LOCAL lock_timeout = '200ms'"))
            quotas.lock_project(after, "project-a")
    finally:
        db.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "before",
    [
        {"instances": -1, "cores": -1, "ram": -1},  # all unlimited: no count, but still the lock
        {"instances": -1, "cores": 100, "ram": -1},
    ],
)
def test_a_create_sees_a_limit_lowered_while_it_waits(pg_cloud: Cloud, before: dict[str, int]) -> None:
    """A quota update (not forced) holds the project's lock while it lowers `instances` to 0;
    a create checked meanwhile waits for it and reads the limits after it: refused. (The check
    once read the limits before the lock, and took none when all three were unlimited.)"""
    project = "quota-race-project"
    db = database(pg_cloud)
    try:
        with db.transaction() as s:
            s.add_all(Quota(project_id=project, resource=r, hard_limit=v) for r, v in before.items())
        outcome: list[BaseException | None] = []

        def create() -> None:
            try:
                with db.transaction() as s:
                    quotas.check_instance_quota(s, project, 1, 1, 512)
                outcome.append(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
                outcome.append(exc)

        with db.transaction() as holder:
            quotas.lock_project(holder, project)
            holder.execute(
                update(Quota)
                .where(Quota.project_id == project, Quota.resource == "instances")
                .values(hard_limit=0)
            )
            waiting = threading.Thread(target=create)
            waiting.start()
            waiting.join(0.5)
            assert waiting.is_alive(), outcome  # it waits for the update's lock
        waiting.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], OverLimit), outcome
        assert "Quota exceeded for instances" in str(outcome[0])
    finally:
        db.dispose()
