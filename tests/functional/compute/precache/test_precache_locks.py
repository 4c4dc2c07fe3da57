"""PostgreSQL: a precache job's rows are locked in one order by every path (the job's row
before any task's), so concurrent reports, a cancel and the sweep never deadlock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from kumo.agent import service as agent_service
from kumo.agent.protocol import TaskReport
from kumo.api.context import RequestContext
from kumo.compute import hosts
from kumo.compute.precache import service
from kumo.compute.precache.models import PrecacheHost, PrecacheJob
from kumo.config import Settings, get_settings
from kumo.db import Database
from kumo.deploy import init_cloud
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD

ADMIN = RequestContext(user_id="u-admin", project_id="p-admin", roles=("admin", "member", "reader"))
IMAGES = ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222")
HOSTS = [f"lk-{rack}{i}" for rack in "abcdefgh" for i in (1, 2)]


def _in_threads(*jobs: Callable[[], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def run(job: Callable[[], None]) -> None:
        start.wait()
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - every failure is the test's answer
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread is still waiting (a lock cycle)"
    return errors


@pytest.mark.postgres
def test_concurrent_reports_cancel_and_sweep_never_deadlock(
    tmp_path: Path, pg_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(state_dir=tmp_path / "state", database_url=pg_database_url)
    db = init_cloud(settings, ADMIN_PASSWORD, DEMO_PASSWORD)
    db.dispose()
    db = Database(settings.resolved_database_url, pool_size=24)
    monkeypatch.setattr(get_settings(), "precache_origin_concurrency", 64)
    try:
        with db.transaction() as session:
            for name in HOSTS:
                hosts.register_host(session, name, vcpus=8, memory_mb=16384, disk_gb=200)
                session.flush()
                hosts.heartbeat(session, name)
            for host in session.scalars(select(hosts.ComputeHost).where(hosts.ComputeHost.name.in_(HOSTS))):
                host.rack = host.name[3]
        for round_ in range(4):
            with db.transaction() as session:
                job_id = service.start(session, None, HOSTS, IMAGES)
            with db.read() as session:
                tasks = list(
                    session.scalars(
                        select(PrecacheHost.task_id).where(
                            PrecacheHost.job_id == job_id, PrecacheHost.task_id.is_not(None)
                        )
                    )
                )
            assert len(tasks) == 16  # one seed per rack and image
            # every seed reports at once; each report of the first image says the origin's image is
            # unusable (its job fails every other copy of that image: their tasks, locked by their
            # own reports), the second image's are copies; a cancel and the sweep run among them
            half = len(tasks) // 2

            def report(task_id: str, failed: bool) -> Callable[[], None]:
                details = (
                    {"state": "error", "error": "Image is not active.", "origin_failed": True}
                    if failed
                    else {"state": "cached", "source": "origin", "bytes": 1, "bytes_from_origin": 1}
                )
                return lambda: agent_service.complete_all(
                    db, [TaskReport(task_id=task_id, ok=True, details=details)]
                )

            def cancel(job_id: str = job_id) -> None:
                with db.transaction() as session:
                    service.cancel(session, ADMIN, job_id)

            def sweep(job_id: str = job_id) -> None:
                with db.transaction() as session:
                    service.sweep(session, [job_id])

            with db.read() as session:
                first = set(
                    session.scalars(
                        select(PrecacheHost.task_id).where(
                            PrecacheHost.job_id == job_id, PrecacheHost.image_id == IMAGES[0]
                        )
                    )
                )
            reports = [report(t, t in first) for t in tasks]
            extra = [cancel] if round_ % 2 else []
            errors = _in_threads(*reports[:half], sweep, *extra, *reports[half:], sweep)
            assert errors == [], [repr(e) for e in errors]
            with db.read() as session:
                job = session.get(PrecacheJob, job_id)
                assert job is not None
                rows = list(session.scalars(select(PrecacheHost).where(PrecacheHost.job_id == job_id)))
                # every report was applied: the first image failed everywhere (or was cancelled)
                first_states = {r.state for r in rows if r.image_id == IMAGES[0]}
                assert "error" in first_states and first_states <= {"error", "skipped"}
                seeds = [r for r in rows if r.image_id == IMAGES[1] and r.task_id in tasks]
                assert len(seeds) == 8 and {r.state for r in seeds} == {"cached"}
                if round_ % 2:
                    assert job.state in ("cancelling", "cancelled")
    finally:
        db.dispose()
