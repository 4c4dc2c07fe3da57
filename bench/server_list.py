"""`GET /compute/v2.1/servers/detail?limit=1000` latency: the page issue 5 asks for in under
200 ms p95. Starts an API in this process over a fresh database (SQLite, or PostgreSQL with
--postgres), writes N ACTIVE instances spread over --hosts hosts (20) straight into the database
(the listing, not the boot path, is measured here), then lists the first page of 1,000 as admin with
all_tenants (or, with --scope project, the admin project's own servers) for --seconds from a
client process and reports p50/p95, the CPU per page of the API (this process) and, on
PostgreSQL, of the database's backends, and the API's garbage collections meanwhile (count,
pause, CPU). Baseline, same run: GET /flavors.

--deep also times the page after a marker 90 % of the way down the list (the keyset page that
reads deepest). --background N then times the page again while N client processes keep the
API busy with `GET /servers/{id}` back to back (the density run's list shares its workers with
the simulated fleet's polls and reports), and reports the API's throughput for them.

    .venv/bin/python bench/server_list.py [--servers 1500] [--seconds 30] [--postgres]
        [--scope all|project] [--per-create N] [--deep] [--background N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kumo.compute.models import Instance  # noqa: E402
from kumo.compute.states import VmState  # noqa: E402
from kumo.db import utcnow  # noqa: E402
from tests.conftest import start_cloud  # noqa: E402
from tests.functional.compute.helpers import database, register_hosts  # noqa: E402

FLAVOR = {
    "id": "1",
    "name": "m1.tiny",
    "vcpus": 1,
    "ram": 512,
    "disk": 1,
    "ephemeral": 0,
    "swap": 0,
    "extra_specs": {},
}
TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(path: str) -> float:
    """utime + stime of a /proc stat file, in seconds."""
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class CpuMeter:
    """CPU of the API (this process) and of the database backends."""

    def __init__(self, pg_url: str) -> None:
        self.pg_url = pg_url.replace("+psycopg", "")
        self.pg_name = self.pg_url.rsplit("/", 1)[-1]

    def _db(self) -> float:
        if not self.pg_url:
            return 0.0
        import psycopg

        with psycopg.connect(self.pg_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
            pids = [
                r[0]
                for r in c.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.pg_name,)
                ).fetchall()
            ]
        total = 0.0
        for pid in pids:
            try:
                total += _proc_cpu(f"/proc/{pid}/stat")
            except OSError:
                pass
        return total

    def read(self) -> tuple[float, float]:
        return time.process_time(), self._db()


class GcPauses:
    """Collections of this process's garbage collector (the API's and the client's): how many
    per generation, how long they paused the process (wall) and the CPU they took (a pause
    longer than its CPU is the process waiting for a core, or a finalizer waiting)."""

    def __init__(self) -> None:
        self.started = (0.0, 0.0)
        self.pauses: dict[int, list[tuple[float, float]]] = {0: [], 1: [], 2: []}
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        now = (time.perf_counter(), time.thread_time())
        if phase == "start":
            self.started = now
        else:
            wall, cpu = now[0] - self.started[0], now[1] - self.started[1]
            self.pauses[info["generation"]].append((wall, cpu))

    def take(self) -> dict[str, Any]:
        out = {
            f"gen{g}": {
                "collections": len(p),
                "total_ms": round(sum(w for w, _ in p) * 1000, 1),
                "max_ms": round(max((w for w, _ in p), default=0) * 1000, 1),
                "cpu_ms": round(sum(c for _, c in p) * 1000, 1),
            }
            for g, p in self.pauses.items()
        }
        for p in self.pauses.values():
            p.clear()
        return out


GC = GcPauses()


def _client_loop(
    url: str, headers: dict[str, str], path: str, params: dict[str, object], seconds: float
) -> list[float]:
    """The timing client, in a process of its own: the API's process then holds only the API
    (its CPU and its collector's pauses are the API's)."""
    samples = []
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        client.get(path, params=params).raise_for_status()  # connected
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            client.get(path, params=params).raise_for_status()
            samples.append(time.perf_counter() - t0)
    return samples


class Timer:
    """Times one request path back to back from a client process; CPU per call of this process
    (the API) and of the database's backends; the API's garbage collections meanwhile."""

    def __init__(self, url: str, headers: dict[str, str], meter: CpuMeter) -> None:
        self.url, self.headers, self.meter = url, headers, meter
        self.pool = multiprocessing.get_context("spawn").Pool(1)

    def __call__(
        self, path: str, params: dict[str, object], seconds: float, cpu: bool = True
    ) -> dict[str, Any]:
        before = self.meter.read()
        GC.take()
        samples = self.pool.apply(_client_loop, (self.url, self.headers, path, params, seconds))
        after = self.meter.read()
        collections = GC.take()
        samples.sort()
        out: dict[str, Any] = {
            "calls": len(samples),
            "p50_ms": round(statistics.median(samples) * 1000, 1),
            "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)] * 1000, 1),
            "max_ms": round(samples[-1] * 1000, 1),
        }
        if cpu:
            out["api_cpu_ms_per_call"] = round((after[0] - before[0]) / len(samples) * 1000, 1)
            if self.meter.pg_url:
                out["db_cpu_ms_per_call"] = round((after[1] - before[1]) / len(samples) * 1000, 2)
        out["gc_pauses"] = collections
        return out

    def close(self) -> None:
        self.pool.close()
        self.pool.join()


def _background(url: str, token: str, ids: list[str], stop: Any, measuring: Any, counter: Any) -> None:
    """One busy client: `GET /servers/{id}` back to back until told to stop; counts the calls
    made while the page is being timed."""
    headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.64"}
    done = 0
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        while not stop.is_set():
            c.get(f"/compute/v2.1/servers/{random.choice(ids)}").raise_for_status()
            done += measuring.is_set()
    with counter.get_lock():
        counter.value += done


def write_instances(db: Any, owner: str, servers: int, per_create: int, hosts: int) -> list[str]:
    """Bulk INSERTs (Core executemany), 5,000 rows per statement batch."""
    created = utcnow()
    ids = []
    batch: list[dict[str, Any]] = []
    for i in range(servers):
        if i % max(1, per_create) == 0:
            created += dt.timedelta(milliseconds=1)
        ident = str(uuid.uuid4())
        ids.append(ident)
        batch.append(
            {
                "uuid": ident,
                "created_at": created,
                "updated_at": created + dt.timedelta(seconds=5),
                "launched_at": created + dt.timedelta(seconds=4),
                "project_id": owner,
                "user_id": "u1",
                "name": f"vm-{i}",
                "hostname": f"vm-{i}",
                "image_ref": "img",
                "flavor": FLAVOR,
                "vcpus": 1,
                "memory_mb": 512,
                "vm_state": str(VmState.ACTIVE),
                "task_state": None,
                "power_state": 1,
                "host": f"h{i % hosts}",
                "availability_zone": "nova",
                "metadata_": {"k": "v"},
                "tags": [],
                "scheduler_hints": {},
                "launch_index": 0,
                "reservation_id": "r-1",
                "config_drive": "",
            }
        )
        if len(batch) == 5000 or i == servers - 1:
            with db.transaction() as s:
                s.execute(insert(Instance), batch)
            batch = []
    with db.transaction() as s:
        if not db.is_sqlite:
            s.execute(text("ANALYZE instances"))
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument(
        "--scope",
        choices=["all", "project"],
        default="all",
        help="all: admin lists every project's servers (all_tenants); project: the servers are the "
        "admin project's own and it lists them without all_tenants (as kumo bench density does)",
    )
    parser.add_argument("--per-create", type=int, default=1, help="servers sharing one created_at")
    parser.add_argument(
        "--hosts",
        type=int,
        default=20,
        help="hosts the servers are spread over (a page shows each one's state)",
    )
    parser.add_argument("--deep", action="store_true", help="also time a page 90 %% of the way down")
    parser.add_argument(
        "--background", type=int, default=0, help="client processes keeping the API busy meanwhile"
    )
    parser.add_argument(
        "--keep-database", action="store_true", help="keep the PostgreSQL database (for EXPLAIN)"
    )
    args = parser.parse_args()
    url = ""
    if args.postgres:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from boot_storm import create_pg_database

        url = create_pg_database() or ""
    cloud = start_cloud(Path(tempfile.mkdtemp()), url)
    register_hosts(cloud, *[f"h{i}" for i in range(args.hosts)])
    db = database(cloud)
    owner = "p1"
    token = cloud.token()
    if args.scope == "project":
        with httpx.Client(base_url=cloud.url, headers={"X-Auth-Token": token}) as c:
            owner = c.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token}).json()["token"][
                "project"
            ]["id"]
    t0 = time.monotonic()
    ids = write_instances(db, owner, args.servers, args.per_create, args.hosts)
    written_s = time.monotonic() - t0
    db.dispose()
    meter = CpuMeter(url)
    headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.64"}
    report: dict[str, Any] = {
        "backend": "postgresql" if url else "sqlite",
        "servers": args.servers,
        "scope": args.scope,
        "per_create": args.per_create,
        "hosts": args.hosts,
        "written_in_s": round(written_s, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    timed = Timer(cloud.url, headers, meter)
    with httpx.Client(base_url=cloud.url, headers=headers, timeout=60) as client:
        params: dict[str, object] = {"limit": 1000}
        if args.scope == "all":
            params["all_tenants"] = 1
        first = client.get("/compute/v2.1/servers/detail", params=params).json()
        assert len(first["servers"]) == min(1000, args.servers), len(first["servers"])
        report["page_of_1000"] = timed("/compute/v2.1/servers/detail", params, args.seconds)
        if args.deep:
            # Walk to 90 % with the API's own markers (large pages: few calls), then time there.
            target = int(args.servers * 0.9)
            walk = dict(params, limit=1000)
            seen = 0
            while seen + 1000 <= target:
                page = client.get("/compute/v2.1/servers", params=walk).json()["servers"]
                seen += len(page)
                walk["marker"] = page[-1]["id"]
            deep = dict(params, marker=walk["marker"])
            report["page_of_1000_at_90_percent"] = timed("/compute/v2.1/servers/detail", deep, args.seconds)
        report["baseline_get_flavors"] = timed("/compute/v2.1/flavors", {}, min(args.seconds, 10.0))
        if args.background:
            ctx = multiprocessing.get_context("spawn")
            stop, measuring = ctx.Event(), ctx.Event()
            counter = ctx.Value("l", 0)
            procs = [
                ctx.Process(target=_background, args=(cloud.url, token, ids[:5000], stop, measuring, counter))
                for _ in range(args.background)
            ]
            for p in procs:
                p.start()
            time.sleep(3)  # the clients are up and the API busy
            measuring.set()
            t1 = time.monotonic()
            busy = timed("/compute/v2.1/servers/detail", params, args.seconds, cpu=False)
            measuring.clear()
            elapsed = time.monotonic() - t1
            stop.set()
            for p in procs:
                p.join()
            busy["background_requests_per_s"] = round(counter.value / elapsed, 1)
            busy["background_clients"] = args.background
            report["page_of_1000_busy_api"] = busy
    timed.close()
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))
    cloud.server.stop()
    if url and not args.keep_database:
        import psycopg

        name = url.rsplit("/", 1)[-1]
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        print(f"database kept: {url or cloud.settings.resolved_database_url}", file=sys.stderr)


if __name__ == "__main__":
    main()
