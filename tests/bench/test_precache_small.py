"""bench/precache.py at CI size: an in-process kumo API and 20 real agents (fake driver) in 4
racks, each with its own image cache and peer endpoint; an 8 MiB image at 2 MiB/s per transfer
(T = 4 s, slack for the load of CI's other tests), the job started and watched through the API.
One origin copy per rack counted at the origin, every host's cache published the image once,
within 1.5x the model; Nova's way measured on 2 more hosts in the same cloud, and slower."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import precache

pytestmark = pytest.mark.bench

MIB = 1024 * 1024


def test_twenty_hosts_in_four_racks_through_the_api(tmp_path: Path) -> None:
    size = 8 * MIB
    rate = 2 * MIB
    run, nova = precache.run(tmp_path, 20, 4, size, rate, nova_sample=2)
    assert run["job_state"] == "done" and run["cached"] == 20 and run["errors"] == 0
    assert run["origin_bytes"] == 4 * size  # counted at the origin: exactly one copy per rack
    assert run["reported_origin_bytes"] == 4 * size and run["peer_bytes"] == 16 * size
    assert run["origin_attempts"] == 4 and run["from_origin"] == 4 and run["retries"] == 0
    assert run["max_downloads_per_host"] == 1 and run["min_downloads_per_host"] == 1
    assert run["max_bytes_received_per_host"] == size
    assert run["seconds"] <= 1.5 * run["model_seconds"], run
    assert precache.check(run) == []
    assert nova is not None
    assert nova["measured_origin_bytes"] == 2 * size and nova["origin_bytes"] == 20 * size
    assert nova["per_host_seconds"] >= size / rate  # the cap holds on the origin's copies too
    assert nova["seconds"] > 2 * run["seconds"]


def test_the_model() -> None:
    # 6 GiB at 1 Gbit/s (T ≈ 51.5 s), 40 hosts per rack, 1 rack: T·(1 + ⌈log₃ 40⌉) = 5 T
    t = 6 * 1024 * MIB / 125_000_000
    assert precache.model_seconds(40, 1, 6 * 1024 * MIB, 125_000_000, 4) == pytest.approx(5 * t)
    # 200 hosts in 10 racks, 4 seeds at once: 2 extra waves, then 1 + ⌈log₃ 20⌉ = 4 generations
    assert precache.model_seconds(200, 10, 256 * MIB, 8 * MIB, 4) == pytest.approx(32 * (2 + 4))


def test_the_check_counts_the_origin_and_each_host_not_the_self_report() -> None:
    good = {
        "size_mib": 8, "racks": 4, "hosts": 20, "cached": 20, "job_state": "done", "seconds": 1,
        "model_seconds": 1, "origin_bytes": 4 * 8 * MIB, "origin_attempts": 4, "retries": 0,
        "max_downloads_per_host": 1, "min_downloads_per_host": 1, "max_bytes_received_per_host": 8 * MIB,
    }  # fmt: skip
    assert precache.check(good) == []
    assert precache.check({**good, "origin_bytes": 5 * 8 * MIB}) != []  # more than attempted
    assert precache.check({**good, "origin_bytes": 3 * 8 * MIB}) != []  # not one copy per rack
    assert precache.check({**good, "max_downloads_per_host": 2}) != []  # a host published twice
    assert precache.check({**good, "min_downloads_per_host": 0}) != []  # a host never did
    assert precache.check({**good, "max_bytes_received_per_host": 8 * MIB + 1}) != []  # a host twice
    assert precache.check({**good, "seconds": 1.6}) != []  # slower than 1.5x the model
    # a retried copy: more than racks x size is allowed, up to the origin attempts
    assert precache.check({**good, "retries": 1, "origin_attempts": 5, "origin_bytes": 5 * 8 * MIB}) == []
    # retried, yet less than one copy per rack counted at the origin: a rack was never seeded
    retried = {**good, "retries": 1, "origin_attempts": 5}
    assert precache.check({**retried, "origin_bytes": 3 * 8 * MIB}) != []
