"""A real database for placement tests: a SQLite file, and PostgreSQL when it is reachable
(the `pg_database_url` fixture of tests/conftest.py creates and drops a fresh database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import kumo.compute.models  # noqa: F401
import kumo.identity.models  # noqa: F401
import kumo.image.models  # noqa: F401
import kumo.placement.models  # noqa: F401
import kumo.work.models  # noqa: F401  (every model module: create_all needs all tables)
from kumo.db import Base, Database


def _create(url: str) -> Database:
    db = Database(url)
    Base.metadata.create_all(db.engine)
    return db


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """Each test using it runs on both backends (skipped on PostgreSQL when it is absent)."""
    if request.param == "sqlite":
        database = _create(f"sqlite:///{tmp_path / 'kumo.db'}")
    else:
        database = _create(request.getfixturevalue("pg_database_url"))
    yield database
    database.dispose()
