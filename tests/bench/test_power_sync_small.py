"""bench/power_sync.py at CI size: the fake and Redfish modes run, every node is read once per
pass, and the figures are consistent (the bound holds, the baseline waited for every call, the
ratio is computed from them). Not speed: on a shared machine the numbers mean little."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import power_sync

pytestmark = pytest.mark.bench


def run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert power_sync.main(list(args)) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))
    return dict(json.loads(line))


def test_fake_mode(capsys: pytest.CaptureFixture[str]) -> None:
    row = run(
        capsys,
        "--mode",
        "fake",
        "--nodes",
        "80",
        "--latency",
        "0.01",
        "--concurrency",
        "8",
        "--repeat",
        "2",
        "--sequential-sample",
        "20",
    )
    assert row["nodes"] == 80 and row["passes"] == 2
    assert row["median_seconds"] >= 80 * 0.01 / 8  # the bound holds: never more than 8 in flight
    assert row["sequential_seconds_estimated"] >= 80 * 0.01  # one after another: every call waited
    ratio = row["sequential_seconds_estimated"] / row["median_seconds"]
    assert row["speedup_vs_sequential"] == pytest.approx(ratio, rel=0.05, abs=0.1)


def test_redfish_mode_against_simulated_bmcs(capsys: pytest.CaptureFixture[str]) -> None:
    row = run(capsys, "--mode", "redfish", "--nodes", "60", "--latency", "0", "--ports", "3", "--repeat", "2")
    assert row["nodes"] == 60
    # One GET of the system per node per pass, plus the service root twice per BMC address
    # (sushy's client setup).
    assert row["bmc_requests"] == 2 * 60 + 2 * 3
    assert row["median_cpu_seconds"] > 0
    row = run(
        capsys,
        "--mode",
        "redfish",
        "--nodes",
        "30",
        "--latency",
        "0",
        "--ports",
        "3",
        "--repeat",
        "1",
        "--system-object",
    )
    assert row["system_object_cpu_seconds"] > 0 and row["cpu_ratio_vs_system_object"] > 0
