"""Bringing a database to a usable cloud: migrate, then bootstrap identity and defaults."""

from __future__ import annotations

from kumo.config import Settings
from kumo.db import Database
from kumo.db.migrate import upgrade
from kumo.identity.bootstrap import bootstrap


def init_cloud(settings: Settings, admin_password: str, demo_password: str | None = None) -> Database:
    url = settings.resolved_database_url
    upgrade(url)
    db = Database(url)
    with db.transaction() as session:
        bootstrap(session, admin_password, demo_password)
    return db
