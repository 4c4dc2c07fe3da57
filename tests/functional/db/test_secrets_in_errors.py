"""A failed statement never carries its values into a log record, an exception or an error body:
a server create whose insert fails logs the statement and the request id, never the user_data
secret; PostgreSQL's DETAIL (a NOT NULL or CHECK violation repeats the whole failing row) is
dropped."""

from __future__ import annotations

import base64
import logging
import traceback
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from kumo.compute import servers
from kumo.db import Database
from tests.conftest import Cloud
from tests.functional.compute.helpers import API, BACKENDS, either_cloud
from tests.functional.helpers import make_flavor, upload_image


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


def _uuids_repeating(first: str) -> SimpleNamespace:
    """servers.py's `uuid` module, whose uuid4 hands out an id a server already has."""
    return SimpleNamespace(uuid4=lambda: uuid.UUID(first), uuid5=uuid.uuid5, NAMESPACE_OID=uuid.NAMESPACE_OID)


def _everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(message)s %(request_id)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


def test_failed_insert_logs_no_bound_values(
    any_cloud: Cloud, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second create's insert repeats the first server's uuid: a unique violation."""
    secret = base64.b64encode(f"#cloud-config\npassword: s3cr3t-{uuid.uuid4().hex}\n".encode()).decode()
    with any_cloud.client(microversion="2.37") as c:
        flavor, image = make_flavor(c, "s1"), upload_image(c)
        body = {"name": "vm", "flavorRef": flavor, "imageRef": image, "networks": "none"}
        first = c.post(f"{API}/servers", json={"server": body})
        assert first.status_code == 202, first.text
        caplog.set_level(logging.INFO)
        monkeypatch.setattr(servers, "uuid", _uuids_repeating(first.json()["server"]["id"]))
        failed = c.post(f"{API}/servers", json={"server": {**body, "user_data": secret}})
    assert failed.status_code == 500
    assert secret not in failed.text
    logged = _everything_logged(caplog)
    assert secret not in logged
    assert "s3cr3t" not in logged
    request_id = failed.headers["x-openstack-request-id"]
    crash = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert crash and all(r.request_id == request_id for r in crash)  # type: ignore[attr-defined]
    assert "INSERT INTO instances" in logged  # the statement, for whoever reads the log


@pytest.mark.postgres
def test_postgresql_detail_with_the_failing_row_is_dropped(pg_database_url: str) -> None:
    db = Database(pg_database_url)
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    try:
        with pytest.raises(IntegrityError) as failed, db.transaction() as session:
            session.execute(text("CREATE TEMPORARY TABLE t (a integer NOT NULL, b text)"))
            session.execute(text("INSERT INTO t VALUES (:a, :b)"), {"a": None, "b": secret})
    finally:
        db.dispose()
    shown = "".join(traceback.format_exception(failed.value))
    assert secret not in shown and secret not in repr(failed.value.orig)
    assert 'null value in column "a"' in shown and "INSERT INTO t VALUES" in shown
