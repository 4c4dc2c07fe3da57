"""The agent's CPU steal signal: rates from counter deltas, time-based smoothing, baselines, and
the fake driver's fair-share model that feeds it at fleet scale."""

from __future__ import annotations

import math

import pytest

from kumo.agent import cpu_signal as cs
from kumo.agent.drivers import fake
from kumo.agent.drivers.base import CpuSample, VcpuCounters

S = 1_000_000_000  # ns per second


def sample(at: float, **guests: tuple[int, float, float]) -> CpuSample:
    """guests: uuid=(vcpus, seconds run, seconds delayed)."""
    return CpuSample(
        at, 4.0, 0.5, {u: VcpuCounters(v, int(t * S), int(d * S)) for u, (v, t, d) in guests.items()}
    )


@pytest.mark.parametrize(
    ("before", "after", "seconds", "expect"),
    [
        ((2, 0, 0), (2, 10, 2), 10.0, (1.0, 0.2)),  # 1 core run, 0.2 core waited
        ((1, 5, 5), (1, 5, 5), 10.0, (0.0, 0.0)),  # idle
        ((1, 10, 0), (1, 2, 0), 10.0, None),  # counters went back: restarted or migrated
        ((1, 0, 10), (1, 5, 2), 10.0, None),
        ((1, 0, 0), (2, 5, 0), 10.0, None),  # vCPUs changed: not comparable
        ((1, 0, 0), (1, 5, 0), 0.0, None),  # no time passed
    ],
)
def test_rate(
    before: tuple[int, int, int], after: tuple[int, int, int], seconds: float, expect: object
) -> None:
    got = cs.rate(
        VcpuCounters(before[0], before[1] * S, before[2] * S),
        VcpuCounters(after[0], after[1] * S, after[2] * S),
        seconds,
    )
    if expect is None:
        assert got is None
    else:
        assert got is not None
        assert (got.run_cores, got.delay_cores) == pytest.approx(expect)


def test_steal_pct_is_delay_per_vcpu_and_demand_is_run_plus_delay() -> None:
    r = cs.GuestRate(vcpus=2, run_cores=1.2, delay_cores=0.3)
    assert r.steal_pct == pytest.approx(15.0)
    assert r.demand == pytest.approx(1.5)


def test_smoothing_is_time_based() -> None:
    old, new = cs.GuestRate(1, 0.0, 0.0), cs.GuestRate(1, 1.0, 0.5)
    # one 60 s step equals six 10 s steps with the same tau
    once = cs.smoothed(old, new, 60.0, 60.0)
    stepped = old
    for _ in range(6):
        stepped = cs.smoothed(stepped, new, 10.0, 60.0)
    assert once.delay_cores == pytest.approx(stepped.delay_cores)
    assert once.delay_cores == pytest.approx(0.5 * (1 - math.exp(-1)))
    assert cs.smoothed(None, new, 10.0, 60.0) == new


def test_signal_baselines_and_forgets() -> None:
    signal = cs.CpuSignal(tau=0.0)  # no smoothing: the raw rates
    signal.add(sample(0.0, a=(1, 0, 0)))
    assert signal.guests == {}  # one sample: no rate yet
    signal.add(sample(10.0, a=(1, 6, 2), b=(1, 100, 100)))
    assert signal.guests["a"].delay_cores == pytest.approx(0.2)
    assert "b" not in signal.guests  # first seen
    signal.add(sample(20.0, a=(1, 1, 0), b=(1, 110, 101)))
    assert "a" not in signal.guests  # counters reset (migrated in anew): new baseline
    assert signal.guests["b"].steal_pct == pytest.approx(10.0)
    signal.add(sample(30.0, a=(1, 2, 0)))
    assert set(signal.guests) == {"a"}  # b left the host
    report = signal.report()
    assert report["cores"] == 4.0 and report["load1"] == 0.5
    assert report["guests"] == {"a": {"vcpus": 1, "run_cores": pytest.approx(0.1), "delay_cores": 0.0}}


def test_fake_driver_fair_share_model() -> None:
    now = [0.0]
    driver = fake.FakeDriver("cpu-fake-host", vcpus=4, cpu_cores=2.0)
    driver.cpu_clock = lambda: now[0]
    try:
        for uuid, demand in (("hog", 1.0), ("victim", 0.9), ("idle", 0.0)):
            driver.spawn({"uuid": uuid, "flavor": {"vcpus": 1}, "metadata": {"fake_cpu_demand": str(demand)}})
        signal = cs.CpuSignal(tau=0.0)
        signal.add(driver.cpu_stats())
        now[0] = 10.0
        signal.add(driver.cpu_stats())
        # D = 1.9 = 0.95 x 2 cores: at the knee, nothing lost yet
        assert signal.guests["victim"].delay_cores == pytest.approx(0.0)
        fake.DEMAND["victim"] = 1.0  # the load trace moves: D = 2.0, each loses 1 - 1.9/2.0 = 5 %
        now[0] = 20.0
        signal.add(driver.cpu_stats())
        assert signal.guests["victim"].steal_pct == pytest.approx(5.0, abs=1e-6)
        assert signal.guests["hog"].run_cores == pytest.approx(0.95, abs=1e-6)
        assert signal.guests["idle"].demand == 0.0
        assert sum(g.run_cores for g in signal.guests.values()) == pytest.approx(1.9, abs=1e-6)
    finally:
        for uuid in ("hog", "victim", "idle"):
            driver.destroy({"uuid": uuid})
            fake.DEMAND.pop(uuid, None)
