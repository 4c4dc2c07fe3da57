"""GET /os-migrations' query through the API: pages with migrations_links from 2.59, the
time and owner filters of 2.66 and 2.80, unknown parameters 400 from 2.59 only."""

from __future__ import annotations

import datetime as dt
import uuid

from kumo.compute.models import Migration
from tests.conftest import Cloud
from tests.functional.compute.helpers import database

API = "/compute/v2.1"
T0 = dt.datetime(2026, 3, 1)


def _add_migrations(cloud: Cloud) -> list[str]:
    """Three finished cold migrations an hour apart (newest last), owned by u0, u1, u2."""
    ids = [str(uuid.uuid4()) for _ in range(3)]
    db = database(cloud)
    try:
        with db.transaction() as s:
            for n, mid in enumerate(ids):
                at = T0 + dt.timedelta(hours=n)
                s.add(
                    Migration(
                        uuid=mid,
                        instance_uuid=str(uuid.uuid4()),
                        migration_type="migration",
                        status="confirmed",
                        source_compute="h1",
                        dest_compute="h2",
                        user_id=f"u{n}",
                        project_id="p",
                        created_at=at,
                        updated_at=at,
                    )
                )
    finally:
        db.dispose()
    return ids


def test_os_migrations_query(cloud: Cloud) -> None:
    ids = _add_migrations(cloud)
    with cloud.client(microversion="2.80") as c:
        page = c.get(f"{API}/os-migrations", params={"limit": 2, "status": "confirmed"}).json()
        assert [m["uuid"] for m in page["migrations"]] == [ids[2], ids[1]]
        (link,) = page["migrations_links"]
        assert (
            link["rel"] == "next"
            and f"marker={ids[1]}" in link["href"]
            and "status=confirmed" in link["href"]
        )
        rest = c.get(link["href"]).json()
        assert [m["uuid"] for m in rest["migrations"]] == [ids[0]] and "migrations_links" not in rest
        since = {"changes-since": "2026-03-01T00:30:00Z", "changes-before": "2026-03-01T01:30:00Z"}
        assert [m["uuid"] for m in c.get(f"{API}/os-migrations", params=since).json()["migrations"]] == [
            ids[1]
        ]
        owned = c.get(f"{API}/os-migrations", params={"user_id": "u0"}).json()["migrations"]
        assert [(m["uuid"], m["user_id"]) for m in owned] == [(ids[0], "u0")]
        assert c.get(f"{API}/os-migrations", params={"bogus": "1"}).status_code == 400
        assert c.get(f"{API}/os-migrations", params={"marker": "nope"}).status_code == 400
    with cloud.client(microversion="2.79") as c:
        assert c.get(f"{API}/os-migrations", params={"user_id": "u0"}).status_code == 400
    with cloud.client(microversion="2.58") as c:  # before paging: ignored, everything listed
        loose = c.get(f"{API}/os-migrations", params={"limit": 1, "bogus": "1"}).json()
        assert len(loose["migrations"]) == 3 and "migrations_links" not in loose
