"""Migration 5f3c1e9a7b20 (project trees and tags, users' extra, domain-specific roles) downgrades
with domain-specific roles present, on SQLite and PostgreSQL: they go, with their grants and the
inference rules naming them, before role names are unique again; global roles and their grants
stay. At head the models' server defaults are the migration's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from kumo.db.migrate import alembic_config, upgrade
from kumo.identity import models
from tests.conftest import fresh_pg_database

BEFORE = "7d7f2e92d491"
DOMAIN_ROLES = "5f3c1e9a7b20"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    yield from fresh_pg_database()


def test_downgrade_drops_domain_specific_roles_first(database_url: str) -> None:
    upgrade(database_url, DOMAIN_ROLES)
    engine = create_engine(database_url)
    role = text("INSERT INTO roles (id, name, domain_id, description) VALUES (:id, :name, :domain, '')")
    grant = text(
        "INSERT INTO grants (actor_type, actor_id, target_type, target_id, role_id) "
        "VALUES ('user', 'u1', 'project', 'p1', :role)"
    )
    implied = text("INSERT INTO implied_roles (prior_role_id, implied_role_id) VALUES (:prior, :implied)")
    with engine.begin() as conn:
        conn.execute(role, {"id": "g-member", "name": "member", "domain": ""})
        conn.execute(role, {"id": "g-reader", "name": "reader", "domain": ""})
        conn.execute(role, {"id": "d1-member", "name": "member", "domain": "d1"})
        conn.execute(role, {"id": "d2-member", "name": "member", "domain": "d2"})
        for role_id in ("g-member", "d1-member"):
            conn.execute(grant, {"role": role_id})
        conn.execute(implied, {"prior": "g-member", "implied": "g-reader"})
        conn.execute(implied, {"prior": "d1-member", "implied": "g-member"})
        conn.execute(implied, {"prior": "d2-member", "implied": "d1-member"})
    engine.dispose()

    command.downgrade(alembic_config(database_url), BEFORE)

    engine = create_engine(database_url)
    with engine.connect() as conn:
        roles = sorted(conn.execute(text("SELECT id, name FROM roles")).all())
        grants = [r[0] for r in conn.execute(text("SELECT role_id FROM grants"))]
        rules = conn.execute(text("SELECT prior_role_id, implied_role_id FROM implied_roles")).all()
        columns = {c["name"] for c in inspect(conn).get_columns("roles")}
    engine.dispose()
    assert roles == [("g-member", "member"), ("g-reader", "reader")]
    assert grants == ["g-member"]
    assert [tuple(r) for r in rules] == [("g-member", "g-reader")]
    assert "domain_id" not in columns
    upgrade(database_url)  # and up again to head


def test_server_defaults_of_the_json_columns_match_the_migration() -> None:
    """projects.tags, projects.extra and users.extra: the models declare what the migration made."""
    columns = (
        models.Project.__table__.c.tags,
        models.Project.__table__.c.extra,
        models.User.__table__.c.extra,
    )
    defaults = [c.server_default.arg if c.server_default is not None else None for c in columns]  # type: ignore[attr-defined]
    assert defaults == ["[]", "{}", "{}"]
