"""One request the scheduler cannot process fails alone (issue 15): a flavor whose stored extra
spec is not a number, or a placement that raises for one server, puts that server in ERROR with
a fault that says why, its scheduling event failed and no allocation left, while the servers of
another project beside it become ACTIVE. An error of the database's own marks nobody ERROR."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import exc, func, select, update

from kumo.compute import lifecycle_apply, scheduling
from kumo.compute.models import Flavor, Instance
from kumo.db import Database
from kumo.placement.models import Allocation
from tests.conftest import DEMO_PASSWORD, Cloud, Fleet, wait_for
from tests.functional.helpers import make_flavor, upload_image

API = "/compute/v2.1"
MV = "2.64"
POISON = {"resources:VCPU": "abc"}


def _create(c: httpx.Client, flavor: str, image: str, name: str) -> str:
    body = {"server": {"name": name, "flavorRef": flavor, "imageRef": image, "networks": "none"}}
    resp = c.post(f"{API}/servers", json=body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["server"]["id"])


def _server(c: httpx.Client, sid: str) -> dict[str, Any]:
    resp = c.get(f"{API}/servers/{sid}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["server"])


def _settled(c: httpx.Client, sid: str, status: str) -> dict[str, Any]:
    return dict(wait_for(lambda: (s := _server(c, sid))["status"] == status and s, timeout=15))


def _poisoned_among_clean(c: httpx.Client, image: str, bad: str, good: str) -> tuple[str, dict[str, Any]]:
    """A server "poisoned" of flavor `bad`, then three of flavor `good` that become ACTIVE; returns
    the poisoned one's id and itself once in ERROR."""
    poisoned = _create(c, bad, image, "poisoned")
    clean = [_create(c, good, image, f"clean-{i}") for i in range(3)]
    for sid in clean:
        _settled(c, sid, "ACTIVE")
    return poisoned, _settled(c, poisoned, "ERROR")


def _schedule_event(c: httpx.Client, sid: str) -> dict[str, Any]:
    actions = c.get(f"{API}/servers/{sid}/os-instance-actions").json()["instanceActions"]
    create = c.get(f"{API}/servers/{sid}/os-instance-actions/{actions[-1]['request_id']}").json()
    events = {e["event"]: e for e in create["instanceAction"]["events"]}
    return dict(events["conductor_schedule_and_build_instances"])


@pytest.fixture
def db_of() -> Iterator[Any]:
    opened: list[Database] = []

    def open_db(cloud: Cloud) -> Database:
        opened.append(Database(cloud.settings.resolved_database_url))
        return opened[-1]

    yield open_db
    for db in opened:
        db.dispose()


def _poison_flavor(db: Database, flavor_id: str) -> None:
    """Written straight into the database: the API may refuse such a spec on write by now."""
    with db.transaction() as s:
        s.execute(update(Flavor).where(Flavor.id == flavor_id).values(extra_specs=POISON))


def _allocations(db: Database, consumer: str) -> int:
    with db.read() as s:
        return int(
            s.scalar(select(func.count()).select_from(Allocation).where(Allocation.consumer_id == consumer))
            or 0
        )


def _poisoned_flavor_fails_alone(cloud: Cloud, fleet: Fleet, db: Database) -> None:
    fleet.add("h1")
    fleet.add("h2")
    demo = cloud.token("demo", DEMO_PASSWORD, "demo")
    with cloud.client(microversion=MV) as admin, cloud.client(demo, microversion=MV) as other:
        image = upload_image(admin)
        bad, good = make_flavor(admin, "poisoned"), make_flavor(admin, "clean")
        _poison_flavor(db, bad)
        poisoned = _create(admin, bad, image, "poisoned")  # the oldest: first in every pass
        clean = [_create(other, good, image, f"clean-{i}") for i in range(3)]
        for sid in clean:
            _settled(other, sid, "ACTIVE")
            assert _server(admin, sid)["OS-EXT-SRV-ATTR:host"] in ("h1", "h2")
        server = _settled(admin, poisoned, "ERROR")
        assert "resources:VCPU" in server["fault"]["message"]
        assert "'abc'" in server["fault"]["message"]
        assert server["OS-EXT-STS:task_state"] is None
        event = _schedule_event(admin, poisoned)
        assert event["result"] == "Error"
        assert event["finish_time"] is not None
        assert _allocations(db, poisoned) == 0


def test_poisoned_flavor_fails_alone_sqlite(cloud: Cloud, fleet: Fleet, db_of: Any) -> None:
    _poisoned_flavor_fails_alone(cloud, fleet, db_of(cloud))


def test_poisoned_flavor_fails_alone_postgres(pg_cloud: Cloud, pg_fleet: Fleet, db_of: Any) -> None:
    _poisoned_flavor_fails_alone(pg_cloud, pg_fleet, db_of(pg_cloud))


def _placement_that_raises_fails_alone(
    cloud: Cloud, fleet: Fleet, db: Database, mp: pytest.MonkeyPatch
) -> None:
    """The placement itself raises for one server (after its claim on the ORM path; before the
    one statement on PostgreSQL): nothing of it stays, and the others are placed."""
    real_spec = lifecycle_apply.spec

    def spec(instance: Instance) -> dict[str, Any]:
        if instance.name == "poisoned":
            raise RuntimeError("cannot describe this one")
        return real_spec(instance)

    mp.setattr(lifecycle_apply, "spec", spec)
    fleet.add("h1")
    with cloud.client(microversion=MV) as c:
        image, flavor = upload_image(c), make_flavor(c, "f")
        poisoned, server = _poisoned_among_clean(c, image, flavor, flavor)
        assert server["fault"]["message"] == "RuntimeError: cannot describe this one"
        event = _schedule_event(c, poisoned)
        assert event["result"] == "Error"
        assert _allocations(db, poisoned) == 0
        hypervisor = c.get(f"{API}/os-hypervisors/detail").json()["hypervisors"][0]
        assert hypervisor["vcpus_used"] == 3


def test_placement_that_raises_fails_alone_sqlite(
    cloud: Cloud, fleet: Fleet, db_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _placement_that_raises_fails_alone(cloud, fleet, db_of(cloud), monkeypatch)


def test_placement_that_raises_fails_alone_postgres(
    pg_cloud: Cloud, pg_fleet: Fleet, db_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _placement_that_raises_fails_alone(pg_cloud, pg_fleet, db_of(pg_cloud), monkeypatch)


def test_a_read_that_raises_for_one_request_fails_it_alone(
    cloud: Cloud, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pass's shared read raises whenever one request is in it: the pass is run again one
    request at a time, and only that request fails."""
    real = scheduling.pass_snapshot
    broken: set[str] = set()

    def pass_snapshot(session: Any, settings: Any, requests: Any, *args: Any, **kw: Any) -> Any:
        if any(r.flavor_id in broken for r in requests):
            raise ValueError("this request breaks the read")
        return real(session, settings, requests, *args, **kw)

    monkeypatch.setattr(scheduling, "pass_snapshot", pass_snapshot)
    fleet.add("h1")
    with cloud.client(microversion=MV) as c:
        image, flavor, bad = upload_image(c), make_flavor(c, "f"), make_flavor(c, "bad")
        broken.add(bad)
        poisoned, server = _poisoned_among_clean(c, image, bad, flavor)
        assert server["fault"]["message"] == "ValueError: this request breaks the read"


def test_a_database_error_marks_no_one_error(
    cloud: Cloud, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that raises for the database's sake (here: its read, three times) leaves every
    server pending and the scheduler loop running: all become ACTIVE once the database answers."""
    real = scheduling.pass_snapshot
    failures = iter(range(3))

    def pass_snapshot(*args: Any, **kw: Any) -> Any:
        if next(failures, None) is not None:
            raise exc.OperationalError("SELECT", {}, ConnectionError("server closed the connection"))
        return real(*args, **kw)

    fleet.add("h1")
    with cloud.client(microversion=MV) as c:
        image, flavor = upload_image(c), make_flavor(c, "f")
        monkeypatch.setattr(scheduling, "pass_snapshot", pass_snapshot)
        sids = [_create(c, flavor, image, f"vm-{i}") for i in range(3)]
        for sid in sids:
            assert "fault" not in _settled(c, sid, "ACTIVE")
        assert next(failures, None) is None  # the passes that raised did happen


def test_a_placement_statement_the_database_refuses_fails_alone_postgres(
    pg_cloud: Cloud, pg_fleet: Fleet, db_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL refuses one placement's statement itself (here: a spec that is no valid JSON
    for it): that transaction is rolled back, the server fails alone, the others are placed."""
    real_spec = lifecycle_apply.spec

    def spec(instance: Instance) -> dict[str, Any]:
        described = real_spec(instance)
        return {**described, "progress": float("nan")} if instance.name == "poisoned" else described

    monkeypatch.setattr(lifecycle_apply, "spec", spec)
    db = db_of(pg_cloud)
    pg_fleet.add("h1")
    with pg_cloud.client(microversion=MV) as c:
        image, flavor = upload_image(c), make_flavor(c, "f")
        poisoned, server = _poisoned_among_clean(c, image, flavor, flavor)
        assert server["fault"]["message"].startswith("InvalidTextRepresentation: ")
        assert "[SQL" not in server["fault"]["message"]
        assert _schedule_event(c, poisoned)["result"] == "Error"
        assert _allocations(db, poisoned) == 0
