"""A real database for compute domain tests: a SQLite file, and PostgreSQL when reachable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import kumo.schema  # noqa: F401  (every table, for create_all)
from kumo.db import Base, Database


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = (
        f"sqlite:///{tmp_path / 'kumo.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_database_url")
    )
    database = Database(url)
    Base.metadata.create_all(database.engine)
    yield database
    database.dispose()
