"""A baremetal conductor's heartbeat at fleet size: API and PostgreSQL CPU per beat.

`PUT /internal/v1/conductors/{name}` against `kumo api` (a subprocess, `--workers`) on a fresh
PostgreSQL database holding `--nodes` baremetal nodes, each with its host and provider (written
in bulk here: enrolling through the Ironic API is what `kumo bench density` measures, and takes
minutes). The heartbeat timeout is kumo's default (30 s), so the hosts' heartbeats are really
kept up. The client speaks as `kumo conductor` does: it sends back the assignment version of
its last answer (`assignment`) when the answer carried one.

Scenarios, in order:

  first     conductor c1's first beat: it owns every node (full answer, every host row written)
  keeping_up  its next beat, `--settle` s later (past kumo/baremetal/assignments.py's WINDOW,
            so the nodes are no longer "recently written"): every host's heartbeat is due
  burst     `--burst` beats back to back right after it (no host is due: a beat's own cost;
            with the version held, each is answered "unchanged")
  steady    c1 beating every `--interval` s for `--window` s with nothing changing; the API's
            and PostgreSQL's CPU over the window minus the same window idle just before, per
            beat and as a share of one core at that interval
  join      c2's first beat (the assignment changes: it takes about half of the nodes)
  changed   c1's next beat after c2 joined (its assignment changed: about half of the nodes)

    .venv/bin/python bench/conductor_heartbeat.py --nodes 50000 --workers 2 --interval 5
    .venv/bin/python bench/conductor_heartbeat.py --nodes 50000 --interval 10 --fillfactor 50

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kumo.agent.protocol import AGENT_TOKEN_HEADER  # noqa: E402
from kumo.baremetal.models import Node  # noqa: E402
from kumo.compute.models import ComputeHost  # noqa: E402
from kumo.config import Settings  # noqa: E402
from kumo.db import Database, utcnow  # noqa: E402
from kumo.density import measure  # noqa: E402
from kumo.density.cloud import create_pg_database  # noqa: E402
from kumo.deploy import init_cloud  # noqa: E402
from kumo.placement.models import ResourceProvider  # noqa: E402
from kumo.server import free_port  # noqa: E402

TIMEOUT = 30.0


def set_fillfactor(database_url: str, percent: int) -> None:
    """What a migration could do (not done by kumo's): leave room in compute_hosts' pages, so a
    heartbeat's UPDATE finds space for the row's new version on its page (a HOT update: no
    index is touched). Here on the bench's own scratch database only."""
    with psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f"ALTER TABLE compute_hosts SET (fillfactor = {int(percent)})")
        conn.execute("VACUUM FULL ANALYZE compute_hosts")


def load_fleet(database_url: str, count: int) -> float:
    """`count` nodes with their providers and hosts, in bulk (seconds taken)."""
    started = time.monotonic()
    db = Database(database_url)
    now = utcnow()
    uuids = [str(uuid.uuid4()) for _ in range(count)]
    batch = 5000
    with db.transaction() as session:
        for start in range(0, count, batch):
            chunk = uuids[start : start + batch]
            session.execute(
                insert(ResourceProvider),
                [
                    {"uuid": u, "name": u, "generation": 0, "created_at": now, "updated_at": now}
                    for u in chunk
                ],
            )
        ids = {u: i for u, i in session.execute(select(ResourceProvider.uuid, ResourceProvider.id))}
        for start in range(0, count, batch):
            chunk = uuids[start : start + batch]
            session.execute(
                insert(ComputeHost),
                [
                    {
                        "name": u,
                        "uuid": u,
                        "service_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"kumo:baremetal:{u}")),
                        "provider_id": ids[u],
                        "hypervisor_type": "ironic",
                        "hypervisor_version": 1,
                        "host_ip": "127.0.0.1",
                        "vcpus": 64,
                        "memory_mb": 262_144,
                        "disk_gb": 1000,
                        "cpu_info": {},
                        "disabled": False,
                        "forced_down": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for u in chunk
                ],
            )
            session.execute(
                insert(Node),
                [
                    {
                        "uuid": u,
                        "name": f"bm-{start + i:06d}",
                        "driver": "fake-hardware",
                        "driver_info": {},
                        "properties": {"cpus": 64, "memory_mb": 262_144, "local_gb": 1000},
                        "extra": {},
                        "instance_info": {},
                        "resource_class": "baremetal-density",
                        "provision_state": "enroll",
                        "maintenance": False,
                        "power_sync_failures": 0,
                        "created_at": now,
                    }
                    for i, u in enumerate(chunk)
                ],
            )
    db.dispose()
    with psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute("ANALYZE")
    return time.monotonic() - started


class Api:
    def __init__(self, database_url: str, workers: int) -> None:
        self.state_dir = Path(tempfile.mkdtemp(prefix="kumo-conductor-beat-"))
        settings = Settings(state_dir=self.state_dir, database_url=database_url)
        init_cloud(settings, secrets.token_urlsafe(12)).dispose()
        self.token = settings.secret("agent_token")
        self.database_url = settings.resolved_database_url
        self.port = free_port()
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Any = None

    def start(self) -> None:
        env = {
            **os.environ,
            "KUMO_STATE_DIR": str(self.state_dir),
            "KUMO_DATABASE_URL": self.database_url,
            "KUMO_HEARTBEAT_TIMEOUT_SECONDS": str(TIMEOUT),
        }
        self.log = open(self.state_dir / "api.log", "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kumo.cli",
                "api",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{self.url}/compute/", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "kumo api did not start: " + (self.state_dir / "api.log").read_text()[-2000:]
                )
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        assert self.proc is not None
        return measure.process_tree(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self.log is not None:
            self.log.close()
        shutil.rmtree(self.state_dir, ignore_errors=True)


class Beater:
    """One conductor's side of the protocol: sends back the version it holds."""

    def __init__(self, client: httpx.Client, name: str) -> None:
        self.client, self.name = client, name
        self.version: str | None = None
        self.owned = 0

    def beat(self) -> dict[str, Any]:
        body = {"assignment": self.version} if self.version else {}
        started = time.perf_counter()
        resp = self.client.put(f"/internal/v1/conductors/{self.name}", json=body)
        wall = time.perf_counter() - started
        resp.raise_for_status()
        answer = resp.json()
        if answer.get("nodes") is not None:
            self.owned = len(answer["nodes"])
        self.version = answer.get("assignment")
        return {
            "wall_ms": round(wall * 1000, 1),
            "bytes": len(resp.content),
            "unchanged": bool(answer.get("unchanged")),
            "owned": self.owned,
        }


class PgMeter:
    """CPU of the database's backends, counting those that connect during the measurement."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._start: dict[int, float] = {}

    def _now(self) -> dict[int, float]:
        return {pid: measure.cpu_seconds([pid]) for pid in measure.postgres_pids(self.database)}

    def start(self) -> PgMeter:
        self._start = self._now()
        return self

    def stop(self) -> float:
        return sum(cpu - self._start.get(pid, 0.0) for pid, cpu in self._now().items())


def burst(beater: Beater, count: int) -> dict[str, Any]:
    """`count` beats back to back (right after the first, which wrote every host: none is due)."""
    beats = [beater.beat() for _ in range(count)]
    return {
        "beats": count,
        "unchanged_answers": sum(b["unchanged"] for b in beats),
        "wall_ms_p50": statistics.median(b["wall_ms"] for b in beats),
    }


def metered(api: Api, pg: PgMeter, action: Any) -> dict[str, Any]:
    meter = measure.CpuMeter(api.pids()).start()
    pg.start()
    result = action()
    result["api_cpu_ms"] = round(meter.stop() * 1000, 1)
    result["pg_cpu_ms"] = round(pg.stop() * 1000, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=5.0, help="steady beats every this many s")
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument(
        "--fillfactor", type=int, default=0, help="compute_hosts fillfactor, scratch db (0: as migrated)"
    )
    parser.add_argument("--burst", type=int, default=10, help="back-to-back beats after keeping_up")
    parser.add_argument(
        "--settle", type=float, default=35.0, help="seconds between the first beat and keeping_up"
    )
    args = parser.parse_args()

    database_url, drop = create_pg_database()
    api = Api(database_url, args.workers)
    report: dict[str, Any] = {
        "nodes": args.nodes,
        "workers": args.workers,
        "interval": args.interval,
        "heartbeat_timeout": TIMEOUT,
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "load_at_start": os.getloadavg(),
    }
    try:
        report["load_seconds"] = round(load_fleet(api.database_url, args.nodes), 1)
        if args.fillfactor:
            set_fillfactor(api.database_url, args.fillfactor)
            report["compute_hosts_fillfactor"] = args.fillfactor
        api.start()
        pg = PgMeter(database_url.rsplit("/", 1)[-1])
        with httpx.Client(base_url=api.url, headers={AGENT_TOKEN_HEADER: api.token}, timeout=300) as client:
            c1, c2 = Beater(client, "c1"), Beater(client, "c2")
            report["first"] = metered(api, pg, c1.beat)
            time.sleep(args.settle)
            # Every host's heartbeat is now old: this beat keeps them all up; the next ones, back
            # to back, have nothing to write.
            report["keeping_up"] = metered(api, pg, c1.beat)
            report["burst"] = metered(api, pg, lambda: burst(c1, args.burst))
            # Idle baseline (the workers' own loops), then the same window with beats.
            meter = measure.CpuMeter(api.pids())
            meter.start(), pg.start()
            time.sleep(args.window)
            idle_api, idle_pg = meter.stop(), pg.stop()
            beats: list[dict[str, Any]] = []
            meter.start(), pg.start()
            started = time.monotonic()
            next_at = started
            while time.monotonic() - started < args.window:
                beats.append(c1.beat())
                next_at += args.interval
                time.sleep(max(0.0, next_at - time.monotonic()))
            wall = time.monotonic() - started
            busy_api, busy_pg = meter.stop(), pg.stop()
            extra_api = max(0.0, busy_api - idle_api * wall / args.window)
            extra_pg = max(0.0, busy_pg - idle_pg * wall / args.window)
            report["steady"] = {
                "beats": len(beats),
                "unchanged_answers": sum(b["unchanged"] for b in beats),
                "wall_ms_p50": statistics.median(b["wall_ms"] for b in beats),
                "wall_ms_max": max(b["wall_ms"] for b in beats),
                "bytes_p50": statistics.median(b["bytes"] for b in beats),
                "idle_api_pct": round(idle_api / args.window * 100, 2),
                "idle_pg_pct": round(idle_pg / args.window * 100, 2),
                "api_cpu_ms_per_beat": round(extra_api / len(beats) * 1000, 2),
                "pg_cpu_ms_per_beat": round(extra_pg / len(beats) * 1000, 2),
                "api_pct_of_core": round(extra_api / wall * 100, 3),
                "pg_pct_of_core": round(extra_pg / wall * 100, 3),
                "api_pct_at_10s": round(extra_api / len(beats) / 10 * 100, 3),
                "pg_pct_at_10s": round(extra_pg / len(beats) / 10 * 100, 3),
            }
            report["join"] = metered(api, pg, c2.beat)
            report["changed"] = metered(api, pg, c1.beat)
            report["after_change"] = metered(api, pg, c1.beat)
        report["load_at_end"] = os.getloadavg()
    finally:
        api.stop()
        drop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
