"""Schema management: every change is an Alembic revision under kumo/db/migrations/versions."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, pool

from kumo.db.base import private_sqlite_file

_HERE = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    private_sqlite_file(url)
    engine = create_engine(url, poolclass=pool.NullPool, hide_parameters=True)
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def revision(url: str, message: str, metadata: MetaData) -> None:
    """Autogenerate a new revision from `metadata` (every table: kumo.schema.metadata) against
    a database at head."""
    upgrade(url)
    cfg = alembic_config(url)
    cfg.attributes["target_metadata"] = metadata
    command.revision(cfg, message=message, autogenerate=True)
