"""bench/precache.py at CI size: 20 simulated hosts in 4 racks, an 8 MiB image, 8 MiB/s per
transfer, over the real peer protocol on loopback. One origin copy per rack, no host twice,
every host cached, within 1.5x the model; Nova's way measured on 2 hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import precache
from kumo.compute.precache.planner import Policy

pytestmark = pytest.mark.bench

MIB = 1024 * 1024


def test_twenty_hosts_in_four_racks(tmp_path: Path) -> None:
    run = precache.fan_out(20, 4, 8 * MIB, 8 * MIB, Policy(), tmp_path / "kumo")
    assert run["origin_bytes"] == 4 * 8 * MIB  # exactly one copy per rack
    assert run["retries"] == 0 and run["errors"] == 0 and run["cached"] == 20
    assert run["max_downloads_per_host"] == 1
    assert run["origin_grants"] == 4 and run["max_bytes_received_per_host"] == 8 * MIB
    assert run["peer_bytes"] == 16 * 8 * MIB
    assert precache.check(run) == []
    nova = precache.nova_way(20, 2, 8 * MIB, 8 * MIB, tmp_path / "nova")
    assert nova["origin_bytes"] == 20 * 8 * MIB and nova["measured_origin_bytes"] == 2 * 8 * MIB
    assert nova["seconds"] > run["seconds"]


def test_the_model() -> None:
    # 6 GiB at 1 Gbit/s (T ≈ 51.5 s), 40 hosts per rack, 1 rack: T·(1 + ⌈log₃ 40⌉) = 5 T
    t = 6 * 1024 * MIB / 125_000_000
    assert precache.model_seconds(40, 1, 6 * 1024 * MIB, 125_000_000, 4) == pytest.approx(5 * t)
    # 200 hosts in 10 racks, 4 seeds at once: 2 extra waves, then 1 + ⌈log₃ 20⌉ = 4 generations
    assert precache.model_seconds(200, 10, 256 * MIB, 8 * MIB, 4) == pytest.approx(32 * (2 + 4))


def test_the_check_counts_the_origin_and_each_host_not_the_self_report() -> None:
    good = {
        "size_mib": 8, "racks": 4, "hosts": 20, "cached": 20, "seconds": 1, "model_seconds": 1,
        "origin_bytes": 4 * 8 * MIB, "origin_grants": 4, "max_downloads_per_host": 1,
        "max_bytes_received_per_host": 8 * MIB,
    }  # fmt: skip
    assert precache.check(good) == []
    assert precache.check({**good, "origin_bytes": 5 * 8 * MIB}) != []  # more than granted
    assert precache.check({**good, "max_bytes_received_per_host": 8 * MIB + 1}) != []  # a host twice
