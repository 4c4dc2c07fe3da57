"""One scheduling pass at fleet scale, outside the API: the fleet read and the pure core.

Builds a fleet by bulk SQL in a fresh database (hypervisors with VCPU/MEMORY_MB/DISK_GB,
baremetal nodes with one unit of CUSTOM_BAREMETAL, instances' allocations spread over the
hypervisors), or takes any kumo database with `--url` (one kept by
`kumo bench density --keep --state-dir D`, say), then times, for a batch of identical requests:

* the whole-fleet read (`load_snapshot`, every host) and the pure core over it;
* the baseline prefilter: GET /allocation_candidates' capacity condition
  (`kumo.placement.candidates.fits`) picks the sample, then a snapshot of those hosts only;
* the pass the scheduler runs (`kumo.compute.scheduling.pass_snapshot`): the worker's
  in-memory fleet index (`kumo.compute.fleet_index`, synced first, as a pass does) picks
  the sample, then the same snapshot of those hosts only;

and the same core over each. A developer benchmark: it calls the scheduler's internals in
this process, so it follows them when they move.

    .venv/bin/python bench/scheduler_pass.py --hypervisors 10000 --baremetal 50000 --instances 100000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kumo.compute import scheduling  # noqa: E402
from kumo.compute.fleet_index import FleetIndex  # noqa: E402
from kumo.compute.fleet_snapshot import load_snapshot  # noqa: E402
from kumo.compute.models import ComputeHost  # noqa: E402
from kumo.config import Settings  # noqa: E402
from kumo.db import Database, utcnow  # noqa: E402
from kumo.db.migrate import upgrade  # noqa: E402
from kumo.placement.candidates import fits  # noqa: E402
from kumo.placement.models import Allocation, Inventory, ResourceProvider  # noqa: E402
from kumo.scheduler.core import schedule  # noqa: E402
from kumo.scheduler.request import ScheduleRequest  # noqa: E402
from kumo.scheduler.snapshot import Snapshot  # noqa: E402
from kumo.scheduler.weighers import SchedulerConfig  # noqa: E402
from kumo.store import choice  # noqa: E402,F401  (registers the chooser of every Database's store)
from kumo.store.protocol import store_of  # noqa: E402

PG_ADMIN_URL = os.environ.get("KUMO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
FLAVOR = {"VCPU": 2, "MEMORY_MB": 4096, "DISK_GB": 20}


def create_database(backend: str) -> tuple[str, Callable[[], None]]:
    if backend == "sqlite":
        path = f"/tmp/kumo-sched-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}", lambda: os.path.exists(path) and os.unlink(path) or None
    name = f"kumo_sched_{uuid.uuid4().hex[:10]}"
    admin = PG_ADMIN_URL.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, drop


def load_fleet(url: str, hypervisors: int, baremetal: int, instances: int) -> None:
    """The fleet, migrated and written by bulk SQL: every host up, provider ids from 1 (the
    hypervisors first), instance n's allocations on hypervisor (n * 7919) mod hypervisors."""
    upgrade(url)
    db = Database(url)
    now = utcnow()
    total = hypervisors + baremetal
    with db.transaction() as s:
        s.execute(
            insert(ResourceProvider),
            [
                {"id": i + 1, "uuid": str(uuid.uuid4()), "name": f"host-{i:06d}", "generation": 0}
                for i in range(total)
            ],
        )
        inventories = []
        for i in range(total):
            if i < hypervisors:
                vcpus, ram = (32, 131072) if i % 2 else (64, 262144)
                for rc, amount, ratio in (
                    ("VCPU", vcpus, 4.0),
                    ("MEMORY_MB", ram, 1.0),
                    ("DISK_GB", 4000, 1.0),
                ):
                    inventories.append(
                        {
                            "provider_id": i + 1,
                            "resource_class": rc,
                            "total": amount,
                            "reserved": 0,
                            "min_unit": 1,
                            "max_unit": amount,
                            "step_size": 1,
                            "allocation_ratio": ratio,
                        }
                    )
            else:
                inventories.append(
                    {
                        "provider_id": i + 1,
                        "resource_class": "CUSTOM_BAREMETAL",
                        "total": 1,
                        "reserved": 0,
                        "min_unit": 1,
                        "max_unit": 1,
                        "step_size": 1,
                        "allocation_ratio": 1.0,
                    }
                )
        s.execute(insert(Inventory), inventories)
        s.execute(
            insert(ComputeHost),
            [
                {
                    "name": f"host-{i:06d}",
                    "uuid": str(uuid.uuid4()),
                    "service_uuid": str(uuid.uuid4()),
                    "provider_id": i + 1,
                    "hypervisor_type": "fake" if i < hypervisors else "ironic",
                    "last_heartbeat": now,
                    "cpu_info": {},
                }
                for i in range(total)
            ],
        )
        rows = []
        for n in range(instances):
            provider = (n * 7919) % hypervisors + 1
            consumer = str(uuid.UUID(int=n))
            rows += [
                {
                    "provider_id": provider,
                    "consumer_id": consumer,
                    "resource_class": rc,
                    "used": amount,
                    "created_at": now,
                }
                for rc, amount in FLAVOR.items()
            ]
            if len(rows) >= 30000:
                s.execute(insert(Allocation), rows)
                rows = []
        if rows:
            s.execute(insert(Allocation), rows)
    if url.startswith("postgresql"):
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    db.dispose()


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50": round(statistics.median(ordered) * 1000, 3), "p99": round(p99 * 1000, 3)}


def _id_range(session: Session, classes: list[str]) -> tuple[int, int] | None:
    """The lowest and highest id a provider holding every one of `classes` can have (None when
    no provider holds them all in one range): keeps the walk off the baremetal nodes."""
    rows = session.execute(
        select(func.min(Inventory.provider_id), func.max(Inventory.provider_id))
        .where(Inventory.resource_class.in_(classes))
        .group_by(Inventory.resource_class)
    ).all()
    if len(rows) < len(classes):
        return None
    low, high = max(r[0] for r in rows), min(r[1] for r in rows)
    return (low, high) if low <= high else None


def _fitting_ids(session: Session, page: int, start_after: int, id_range: tuple[int, int]) -> list[int]:
    """Up to `page` ids of providers with room for FLAVOR, by GET /allocation_candidates'
    capacity condition (`kumo.placement.candidates.fits`), walked in id order from
    `start_after` within `id_range` and wrapping around."""
    store_of(session).without_jit(session)  # as GET /allocation_candidates' query does
    low, high = id_range
    rp = ResourceProvider.__table__.alias("rp")
    room = fits(rp.c.id, {rc: (amount, [amount]) for rc, amount in FLAVOR.items()})

    def walk(above: int, at_most: int, limit: int) -> list[int]:
        query = select(rp.c.id).where(room, rp.c.id > above, rp.c.id <= at_most).order_by(rp.c.id)
        return list(session.scalars(query.limit(limit)))

    ids = walk(max(start_after, low - 1), high, page)
    if start_after > 0 and len(ids) < page:
        ids += walk(low - 1, start_after, page - len(ids))
    return ids


def sql_prefilter_read(session: Session, requests: list[Any]) -> Snapshot:
    """The baseline read: GET /allocation_candidates' capacity condition picks the sample (the
    id range of the requested classes, then a walk from a random provider id), then that part
    of the fleet is read exactly; at least 64 hosts, 8 per request."""
    page = min(scheduling.PREFILTER_LIMIT, max(64, 8 * len(requests)))
    id_range = _id_range(session, sorted(FLAVOR))
    assert id_range is not None
    low, high = id_range
    start = random.randint(low - 1, high) if high - low >= page else 0
    ids = _fitting_ids(session, page, start, id_range)
    return load_snapshot(session, 86400, provider_ids=ids, group_uuids=())


def time_pass(url: str, batch: int, repeats: int, whole_batch: int) -> dict[str, Any]:
    """Per way of reading (whole fleet, the SQL prefilter, the fleet index): the read's wall
    time, the hosts it returned, and per request the pure core and the snapshot's claim.
    Every request of the batch must be placed; the database is only read."""
    db = Database(url)
    config = SchedulerConfig()
    settings = Settings(database_url=url, heartbeat_timeout_seconds=86400)
    requests = [ScheduleRequest(f"new-{n}", "p", FLAVOR) for n in range(batch)]
    result: dict[str, Any] = {}
    fleet = FleetIndex()
    with db.transaction() as s:
        t0 = time.perf_counter()
        fleet.sync(s)
        result["fleet_index_first_load_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    for label in ["whole_fleet", "candidates_sql", "fleet_index"]:
        reads, cores, claims_ = [], [], []
        hosts = 0
        for _ in range(repeats):
            with db.transaction() as s:
                t0 = time.perf_counter()
                if label == "whole_fleet":
                    snapshot = load_snapshot(s, 86400)
                elif label == "candidates_sql":
                    snapshot = sql_prefilter_read(s, requests)
                else:
                    fleet.sync(s)
                    snapshot, _partial = scheduling.pass_snapshot(s, settings, requests, fleet)
                reads.append(time.perf_counter() - t0)
            hosts = len(snapshot.hosts)
            for request in requests[: whole_batch if label == "whole_fleet" else batch]:
                t0 = time.perf_counter()
                decision = schedule(request, snapshot, config)
                t1 = time.perf_counter()
                assert decision.ok, decision.message
                snapshot = snapshot.after_claim(decision.candidates[0].host, request)
                cores.append(t1 - t0)
                claims_.append(time.perf_counter() - t1)
        result[label] = {
            "hosts_in_snapshot": hosts,
            "read_ms": _ms(reads),
            "schedule_ms": _ms(cores),
            "after_claim_ms": _ms(claims_),
            "read_ms_per_server_of_a_full_batch": round(statistics.median(reads) * 1000 / batch, 3),
        }
    db.dispose()
    return result


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    """The fleet a bench builds (or the database of one built before, --url)."""
    parser.add_argument("--hypervisors", type=int, default=1000)
    parser.add_argument("--baremetal", type=int, default=0)
    parser.add_argument("--instances", type=int, default=0)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--url", help="an existing fleet database (built by one of these benches) instead")


def run_on_fleet(args: argparse.Namespace, measure: Callable[[str], dict[str, Any]]) -> None:
    """Build the fleet of `args` in a fresh database (unless --url), run `measure` on its URL,
    print the JSON report with the machine's load before and after, and drop the database."""
    if args.url:
        url, drop = args.url, (lambda: None)
    else:
        url, drop = create_database(args.database)
    try:
        t0 = time.monotonic()
        if not args.url:
            load_fleet(url, args.hypervisors, args.baremetal, args.instances)
        report: dict[str, Any] = {
            "fleet": vars(args),
            "load_average_start": os.getloadavg(),
            "fleet_load_seconds": round(time.monotonic() - t0, 1),
        }
        report.update(measure(url))
        report["load_average_end"] = os.getloadavg()
        print(json.dumps(report, indent=2))
    finally:
        drop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_fleet_arguments(parser)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--whole-batch", type=int, default=40, help="requests timed on the whole-fleet core")
    args = parser.parse_args()
    run_on_fleet(args, lambda url: time_pass(url, args.batch, args.repeats, args.whole_batch))


if __name__ == "__main__":
    main()
