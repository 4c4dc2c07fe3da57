"""bench/rebalance_day.py at CI size: two hours around the 12:15 peak on 10 hosts and 125 VMs
(the full day's density), off and on. The planner moves VMs, stolen CPU falls, and the
invariants hold: no excluded or anti-affine violation, no ping-pong, caps respected. Not speed."""

from __future__ import annotations

import pytest

from bench import rebalance_day as day
from kumo.rebalance.core import Policy

pytestmark = pytest.mark.bench


def test_two_hours_off_and_on() -> None:
    off = day.run(10, 125, 2, 0.1, False, Policy(), minutes=120, start=690)
    on = day.run(10, 125, 2, 0.1, True, Policy(), minutes=120, start=690)
    assert off["migrations"] == 0 and off["plan_p99_ms"] is None
    assert 1 <= int(on["migrations"]) <= 10  # type: ignore[call-overload]
    assert on["lost_core_minutes"] < off["lost_core_minutes"]  # type: ignore[operator]
    assert on["violations"] == 0 and on["pingpong_1h"] == 0
    assert int(on["max_inflight"]) <= Policy().per_cloud  # type: ignore[call-overload]
    assert day.check(off, on) == []


def test_check_names_the_missed_targets() -> None:
    off = {"lost_core_minutes": 100, "vms_p95_over_5pct": 10, "vms": 1000}
    on = {
        "lost_core_minutes": 60,
        "busy_p95_steal_pct": 3.0,
        "vms_p95_over_5pct": 2,
        "vms": 1000,
        "migrations": 31,
        "pingpong_1h": 0,
        "violations": 0,
        "plan_p99_ms": 250.0,
    }
    missed = day.check(off, on)  # type: ignore[arg-type]
    assert missed == [
        "stolen CPU at least 50 % lower",
        "busy p95 steal <= 2.5 %",
        "<= 30 migrations per 1,000 VMs",
        "plan() p99 <= 200 ms",
    ]


def test_plan_only_times_a_peak_fleet() -> None:
    row = day.plan_only(20, 250, 1, repeat=2)
    assert row["vms"] == 250 and int(row["moves"]) <= Policy().per_plan  # type: ignore[call-overload]
