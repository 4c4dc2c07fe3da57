"""Shared fixtures: a real kumo API on a free port over SQLite (and PostgreSQL when asked)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kumo import wiring
from kumo.config import Settings
from kumo.db import Database
from kumo.deploy import init_cloud
from kumo.server import ThreadedServer
from kumo.wiring import build_runtime

ADMIN_PASSWORD = "admin-secret"
DEMO_PASSWORD = "demo-secret"
PG_URL = os.environ.get("KUMO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=2):
            return True
    except Exception:
        return False


def fresh_pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database's URL, dropped when resumed; skips when PG is absent."""
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    import psycopg

    name = f"kumo_test_{uuid.uuid4().hex[:10]}"
    admin_dsn = PG_URL.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def work_hooks() -> None:
    """Domain-level tests enqueue and settle as the API does: with the start-up hooks."""
    wiring.install()


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards; skips when PG is absent."""
    yield from fresh_pg_database()


@dataclass
class Cloud:
    url: str
    settings: Settings
    server: ThreadedServer

    def token(self, user: str = "admin", password: str = ADMIN_PASSWORD, project: str = "admin") -> str:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
                },
                "scope": {"project": {"name": project, "domain": {"id": "default"}}},
            }
        }
        resp = httpx.post(f"{self.url}/identity/v3/auth/tokens", json=body)
        assert resp.status_code == 201, resp.text
        return resp.headers["X-Subject-Token"]

    def client(self, token: str | None = None, microversion: str | None = None) -> httpx.Client:
        headers = {"X-Auth-Token": token or self.token()}
        if microversion:
            headers["OpenStack-API-Version"] = f"compute {microversion}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start_cloud(tmp_path: Path, database_url: str = "", template: Path | None = None) -> Cloud:
    """`template`: an already migrated and bootstrapped SQLite file to start from (fast)."""
    settings = Settings(state_dir=tmp_path / "state", database_url=database_url)
    if template is not None:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, settings.state_dir / "kumo.db")
        db = Database(settings.resolved_database_url)
    else:
        db = init_cloud(settings, ADMIN_PASSWORD, DEMO_PASSWORD)
    rt = build_runtime(settings, db)
    server = ThreadedServer(rt).start()
    return Cloud(url=server.url, settings=settings, server=server)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate and bootstrap once per session; each test starts from a copy."""
    settings = Settings(state_dir=tmp_path_factory.mktemp("template"))
    init_cloud(settings, ADMIN_PASSWORD, DEMO_PASSWORD).dispose()
    return settings.state_dir / "kumo.db"


@pytest.fixture
def cloud(tmp_path: Path, sqlite_template: Path) -> Iterator[Cloud]:
    """A kumo API over a fresh SQLite database, with admin and demo bootstrapped."""
    c = start_cloud(tmp_path, template=sqlite_template)
    yield c
    c.server.stop()


@pytest.fixture
def pg_cloud(tmp_path: Path, pg_database_url: str) -> Iterator[Cloud]:
    c = start_cloud(tmp_path, pg_database_url)
    yield c
    c.server.stop()


class Fleet:
    """In-process agents (fake driver) talking to a cloud over the real agent protocol."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.agents: list[Any] = []

    def add(self, name: str, vcpus: int = 8, memory_mb: int = 16384, disk_gb: int = 200, **kw: Any) -> Any:
        from kumo.agent.agent import Agent
        from kumo.agent.drivers.fake import FakeDriver

        driver = kw.get("driver") or FakeDriver(name, vcpus=vcpus, memory_mb=memory_mb, disk_gb=disk_gb)
        agent = Agent(
            self.cloud.url,
            name,
            driver,
            self.cloud.settings.secret("agent_token"),
            heartbeat_interval=kw.get("heartbeat_interval", 2.0),
            poll_wait=2.0,
            rack=kw.get("rack"),
            region=kw.get("region"),
            cpu_sample_interval=kw.get("cpu_sample_interval", 10.0),
            cpu_report_interval=kw.get("cpu_report_interval", 60.0),
            image_cache=kw.get("image_cache"),
        )
        self.agents.append(agent.start())
        return agent

    def stop(self) -> None:
        for agent in self.agents:
            agent.stop()


@pytest.fixture
def fleet(cloud: Cloud) -> Iterator[Fleet]:
    f = Fleet(cloud)
    yield f
    f.stop()


@pytest.fixture
def pg_fleet(pg_cloud: Cloud) -> Iterator[Fleet]:
    f = Fleet(pg_cloud)
    yield f
    f.stop()


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy; returns its value or fails the test."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
