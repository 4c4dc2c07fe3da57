"""The cloud a density test runs against: `kumo api` (and `kumo scheduler` processes) started
here on a fresh database, or a running cloud given by its URL.

A started cloud is initialised the way an operator does it (`kumo.deploy.init_cloud`: migrated,
bootstrapped, its secrets written to the state directory) and then only reached through its
HTTP APIs. Its heartbeat timeout is raised to a day (KUMO_HEARTBEAT_TIMEOUT_SECONDS): hosts
heartbeat at registration and in the measured heartbeat windows only, so that no host goes
down while the fleet is quiet. Every process started here is in a session of its own and is
stopped, and a database created here dropped, by `Target.close` (unless `keep`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from kumo.config import Settings, get_settings
from kumo.deploy import init_cloud
from kumo.server import free_port

PG_ADMIN_URL = os.environ.get("KUMO_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DATABASES = ("sqlite", "postgresql")
START_TIMEOUT_SECONDS = 90.0


@dataclass
class Target:
    """The cloud under test and how to measure it: its URL, the admin's password, the agents'
    token, its database (None when not known: nothing is read from it) and its processes."""

    url: str
    admin_password: str
    agent_token: str
    database_url: str | None
    api_pid: int | None
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    # `kumo scheduler` processes started beside the API: their pids and metrics pages.
    scheduler_pids: list[int] = field(default_factory=list)
    scheduler_metrics: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Run the cleanups, last registered first; one that fails is reported and the rest run."""
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as exc:  # best effort: report, keep cleaning
                print(f"cleanup failed: {exc}", file=sys.stderr)


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg takes it."""
    return url.replace("postgresql+psycopg", "postgresql")


def create_pg_database(prefix: str = "kumo_density") -> tuple[str, Callable[[], None]]:
    """A new, empty PostgreSQL database on the server of KUMO_BENCH_PG_URL: its URL, and the
    function that drops it (closing its connections)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = libpq_url(PG_ADMIN_URL)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, drop


def start_target(
    database: str = "sqlite",
    workers: int = 1,
    scheduler_processes: int = 0,
    state_dir: Path | None = None,
    keep: bool = False,
) -> Target:
    """`kumo api --workers N` as a subprocess on a fresh database, with `scheduler_processes`
    `kumo scheduler` processes beside it (PostgreSQL only; the API then schedules nothing).
    Returns once the API answers; raises with the end of its log if it does not."""
    if database not in DATABASES:
        raise ValueError(f"unknown database {database!r}: sqlite or postgresql")
    if scheduler_processes and database != "postgresql":
        raise ValueError("scheduler processes need --database postgresql")
    cleanups: list[Callable[[], None]] = []
    if state_dir is None:
        state_dir = Path(tempfile.mkdtemp(prefix="kumo-density-"))
        if not keep:
            cleanups.append(lambda: shutil.rmtree(state_dir, ignore_errors=True))
    else:
        state_dir.mkdir(parents=True, exist_ok=True)
    database_url = ""
    if database == "postgresql":
        database_url, drop = create_pg_database()
        if not keep:
            cleanups.append(drop)
    settings = Settings(state_dir=state_dir, database_url=database_url)
    password = secrets.token_urlsafe(12)
    init_cloud(settings, password).dispose()
    port = free_port()
    env = {
        **os.environ,
        "KUMO_STATE_DIR": str(state_dir),
        "KUMO_DATABASE_URL": settings.resolved_database_url,
        "KUMO_HEARTBEAT_TIMEOUT_SECONDS": "86400",
    }
    if scheduler_processes:
        env["KUMO_SCHEDULER_IN_API"] = "0"
    log = open(state_dir / "api.log", "ab")
    api = subprocess.Popen(
        [sys.executable, "-m", "kumo.cli", "api", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    schedulers: list[tuple[subprocess.Popen[bytes], str]] = []
    for _ in range(scheduler_processes):
        metrics_port = free_port()
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "kumo.cli", "scheduler", "--metrics-port", str(metrics_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        schedulers.append((scheduler, f"http://127.0.0.1:{metrics_port}/metrics"))

    def stop_processes() -> None:
        for child in [api, *(scheduler for scheduler, _ in schedulers)]:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait(timeout=5)
        log.close()

    cleanups.append(stop_processes)
    target = Target(
        url=f"http://127.0.0.1:{port}",
        admin_password=password,
        agent_token=settings.secret("agent_token"),
        database_url=settings.resolved_database_url,
        api_pid=api.pid,
        cleanups=cleanups,
        scheduler_pids=[scheduler.pid for scheduler, _ in schedulers],
        scheduler_metrics=[url for _, url in schedulers],
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            if httpx.get(f"{target.url}/compute/", timeout=2).status_code == 200:
                return target
        except httpx.TransportError:
            pass
        if api.poll() is not None or time.monotonic() > deadline:
            target.close()
            raise RuntimeError("kumo api did not start: " + (state_dir / "api.log").read_text()[-2000:])
        time.sleep(0.2)


def existing_target(
    api_url: str,
    admin_password: str | None = None,
    agent_token: str | None = None,
    database_url: str | None = None,
    api_pid: int | None = None,
) -> Target:
    """A running cloud: the admin password from the argument or KUMO_ADMIN_PASSWORD, the agents'
    token from the argument or this host's kumo settings. Nothing is started or stopped."""
    password = admin_password or os.environ.get("KUMO_ADMIN_PASSWORD")
    if not password:
        raise ValueError("--api-url needs --admin-password (or KUMO_ADMIN_PASSWORD)")
    return Target(
        url=api_url.rstrip("/"),
        admin_password=password,
        agent_token=agent_token or get_settings().secret("agent_token"),
        database_url=database_url,
        api_pid=api_pid,
    )


def database_size(url: str | None) -> int | None:
    """Bytes on disk of the cloud's database (SQLite: the file and its WAL), None when unknown."""
    if not url:
        return None
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[-1])
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    with psycopg.connect(libpq_url(url), connect_timeout=5) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else None


def analyze(url: str | None, statement: str = "ANALYZE") -> float | None:
    """Run ANALYZE (or VACUUM ANALYZE) on a PostgreSQL database; the seconds it took, or None
    when the database is not PostgreSQL."""
    if not url or not url.startswith("postgresql"):
        return None
    started = time.monotonic()
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(statement)
    return round(time.monotonic() - started, 2)
