"""bench/storm_workers.py at CI size: 120 creates over `kumo api --workers 4` on PostgreSQL
against one simulated hypervisor with room for 95 of them. The audit must find nothing lost,
doubled or overcommitted: 95 ACTIVE, 25 in a clean ERROR (no valid host, no allocations)."""

from __future__ import annotations

import pytest

from bench.storm_workers import StormOptions, run_storm
from tests.conftest import postgres_available

pytestmark = [pytest.mark.bench, pytest.mark.postgres]


def test_storm_over_four_workers_settles_cleanly() -> None:
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable")
    report = run_storm(StormOptions(servers=120, workers=4, hosts=1, concurrency=16, timeout=180))
    audit = report["audit"]
    assert report["storm"]["api_failure_count"] == 0, report["storm"]["api_failures"]
    assert audit["problems"] == []
    # The simulated hypervisor's RAM, (262,144 - 512) MB x 1.5, holds 95 servers of 4,096 MB.
    assert (audit["instances"], audit["active"], audit["error"]) == (120, 95, 25)
    assert audit["hosts_with_room_for_one_more"] == 0
    assert audit["spawn_tasks"] == 95 == report["agents"]["spawned"]
