"""Alembic environment: the URL comes from the caller (kumo.db.migrate) or KUMO_DATABASE_URL; the
models' metadata (for autogenerate alone) from the caller too (kumo.db.migrate.revision), so
the migrations import no service's models."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from kumo.config import get_settings

config = context.config
metadata = config.attributes.get("target_metadata")  # None: upgrades and downgrades need none


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url
    engine = create_engine(url, poolclass=pool.NullPool, hide_parameters=True)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
