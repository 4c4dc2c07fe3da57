"""A lone request's schedule + claim at fleet scale: the scheduling pass of one server, whole.

Builds the fleet by bulk SQL in a fresh database (bench/scheduler_pass.py's: hypervisors with
VCPU/MEMORY_MB/DISK_GB, baremetal nodes with one CUSTOM_BAREMETAL each, instances' allocations
spread over the hypervisors), then, one at a time, writes a pending server as
`POST /servers` does (instance row in building/scheduling, its create action and open
scheduling event) and times `kumo.compute.scheduling.schedule_pending` on it: the pass's read
(pending row, open event, prefilter, the sampled hosts), the pure core, the claim's
compare-and-swap and allocation rows, the spawn task and events, the commit. That is what
`kumo_schedule_claim_seconds` measures inside the API for a pass of one.

Three ways in the same run, interleaved, with wall time and the process's CPU per pass: the
scheduler as it is (the worker's in-memory fleet index picks the sample; the placement commits
asynchronously), the same pass with a commit that waits for its WAL flush, and the baseline
(GET /allocation_candidates' own query picks the sample, the commit waits for its flush). A
developer benchmark: it swaps the scheduler's read and commit in this process, so it follows
kumo.compute.scheduling when that moves.

    .venv/bin/python bench/lone_request.py --hypervisors 10000 --baremetal 50000 \
        --instances 100000 --requests 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scheduler_pass import add_fleet_arguments, run_on_fleet, sql_prefilter_read  # noqa: E402
from kumo.compute import actions, scheduling  # noqa: E402
from kumo.compute.models import Instance  # noqa: E402
from kumo.config import Settings  # noqa: E402
from kumo.db import Database  # noqa: E402
from kumo.gc_tuning import tune_gc  # noqa: E402
from kumo.wiring import build_runtime  # noqa: E402

FLAVOR = {"id": "b1", "name": "b1.medium", "vcpus": 2, "ram": 4096, "disk": 20}


def add_pending(db: Any) -> str:
    """One server waiting to be scheduled, written as servers.create writes it."""

    instance_uuid = str(uuid.uuid4())
    with db.transaction() as s:
        s.add(
            Instance(
                uuid=instance_uuid,
                project_id="bench",
                user_id="bench",
                name="lone",
                flavor=FLAVOR,
                vcpus=FLAVOR["vcpus"],
                memory_mb=FLAVOR["ram"],
                vm_state="building",
                task_state="scheduling",
            )
        )
        action = actions.start_action(s, instance_uuid, "create", f"req-{uuid.uuid4()}", "bench", "bench")
        actions.start_event(s, action.id, scheduling.SCHEDULE_EVENT)
    return instance_uuid


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "p50": round(statistics.median(ordered) * 1000, 3),
        "p99": round(p99 * 1000, 3),
        "max": round(ordered[-1] * 1000, 3),
    }


def time_lone_requests(url: str, requests: int, gap: float = 0.0) -> dict[str, Any]:
    """`requests` lone passes each way, interleaved, `gap` seconds of idle before each: wall
    and CPU per pass. Every pending server must be placed by its own pass."""

    settings = Settings(
        database_url=url, heartbeat_timeout_seconds=86400, state_dir=Path("/tmp/kumo-lone-bench")
    )
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    db = Database(url)
    rt = build_runtime(settings, db)
    real_pass = scheduling.pass_snapshot

    def baseline_pass(session: Any, settings: Any, requests: Any, fleet: Any, limit: Any = None) -> Any:
        return sql_prefilter_read(session, list(requests)), True

    real_transaction = db.transaction

    def durable_transaction(durable: bool = True) -> Any:
        return real_transaction()  # every commit waits for its WAL flush

    # name → (how the pass picks its sample, whether its placements commit asynchronously)
    ways: dict[str, tuple[Callable[..., Any], bool]] = {
        "fleet_index": (real_pass, True),
        "fleet_index_durable_commit": (real_pass, False),
        "baseline_sql_prefilter": (baseline_pass, False),
    }

    def use(way: tuple[Callable[..., Any], bool]) -> None:
        scheduling.pass_snapshot = way[0]  # type: ignore[assignment]
        db.transaction = real_transaction if way[1] else durable_transaction  # type: ignore[method-assign]

    started = time.perf_counter()
    with db.transaction() as s:
        rt.fleet.sync(s)  # a worker's first pass loads the index once
    first_load = time.perf_counter() - started
    tune_gc()  # as `kumo scheduler` does at start
    walls: dict[str, list[float]] = {name: [] for name in ways}
    cpus: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(2):  # warm-up: connections, statement caches
        for way in ways.values():
            use(way)
            add_pending(db)
            scheduling.schedule_pending(rt)
    try:
        for _ in range(requests):
            for name, way in ways.items():
                use(way)
                add_pending(db)
                time.sleep(gap)  # a lone request finds the scheduler (and PostgreSQL) idle
                wall, cpu = time.perf_counter(), time.process_time()
                handled, woken = scheduling.schedule_pending(rt)
                walls[name].append(time.perf_counter() - wall)
                cpus[name].append(time.process_time() - cpu)
                scheduling.sync_fleet(rt)  # as the scheduler loop does between passes, untimed
                assert handled == 1 and len(woken) == 1, (handled, woken)
    finally:
        use((real_pass, True))
    with db.read() as s:
        left = s.query(Instance).filter(Instance.task_state == "scheduling").count()
    db.dispose()
    assert left == 0, f"{left} servers left pending"
    result: dict[str, Any] = {"fleet_index_first_load_ms": round(first_load * 1000, 1)}
    for name in ways:
        result[name] = {"wall_ms": _ms(walls[name]), "cpu_ms": _ms(cpus[name])}
    for name in ("baseline_sql_prefilter", "fleet_index_durable_commit"):
        result[f"ratio_p50_{name}"] = round(
            statistics.median(walls[name]) / statistics.median(walls["fleet_index"]), 2
        )
        ordered = sorted(walls[name]), sorted(walls["fleet_index"])
        p99 = min(len(ordered[1]) - 1, int(len(ordered[1]) * 0.99))
        result[f"ratio_p99_{name}"] = round(ordered[0][p99] / ordered[1][p99], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_fleet_arguments(parser)
    parser.add_argument("--requests", type=int, default=100, help="lone requests timed each way")
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=0.0,
        help="idle time before each timed pass (in the density run a lone request finds the "
        "scheduler idle since the previous one's spawn)",
    )
    args = parser.parse_args()
    run_on_fleet(args, lambda url: time_lone_requests(url, args.requests, args.gap_ms / 1000))


if __name__ == "__main__":
    main()
