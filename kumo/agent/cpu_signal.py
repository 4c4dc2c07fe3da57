"""The agent's CPU steal signal: rates from successive driver samples, smoothed.

From two samples of a guest's counters (kumo.agent.drivers.base.VcpuCounters) `dt` seconds
apart: run = Δtime/dt and delay = Δdelay/dt (cores); demand = run + delay (the cores it wanted);
steal_pct = 100 x delay / vcpus (what the guest's /proc/stat shows as steal under KVM). Each is
smoothed by a time-based EWMA (weight 1 - exp(-dt/tau)), so the result does not depend on the
sampling interval. A guest whose counters went backwards (restarted, arrived by migration) or
whose vCPU count changed starts a new baseline and gets no rate from that sample; a guest seen
once has no rate yet; a guest gone from the host is forgotten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kumo.agent.drivers.base import CpuSample, VcpuCounters


@dataclass(frozen=True)
class GuestRate:
    vcpus: int
    run_cores: float
    delay_cores: float

    @property
    def demand(self) -> float:
        return self.run_cores + self.delay_cores

    @property
    def steal_pct(self) -> float:
        return 100.0 * self.delay_cores / self.vcpus if self.vcpus else 0.0


def rate(before: VcpuCounters, after: VcpuCounters, seconds: float) -> GuestRate | None:
    """The guest's rates between two samples, or None when they are not comparable."""
    if seconds <= 0 or before.vcpus != after.vcpus:
        return None
    if after.time_ns < before.time_ns or after.delay_ns < before.delay_ns:
        return None
    return GuestRate(
        after.vcpus,
        (after.time_ns - before.time_ns) / 1e9 / seconds,
        (after.delay_ns - before.delay_ns) / 1e9 / seconds,
    )


def smoothed(old: GuestRate | None, new: GuestRate, seconds: float, tau: float) -> GuestRate:
    if old is None or tau <= 0:
        return new
    w = 1.0 - math.exp(-seconds / tau)
    return GuestRate(
        new.vcpus,
        old.run_cores + w * (new.run_cores - old.run_cores),
        old.delay_cores + w * (new.delay_cores - old.delay_cores),
    )


class CpuSignal:
    """Keeps the previous sample and every guest's smoothed rates (not thread-safe: one sampler)."""

    def __init__(self, tau: float = 60.0) -> None:
        self.tau = tau
        self._previous: CpuSample | None = None
        self.guests: dict[str, GuestRate] = {}
        self.cores = 0.0
        self.load1 = 0.0

    def add(self, sample: CpuSample) -> None:
        previous, self._previous = self._previous, sample
        self.cores, self.load1 = sample.cores, sample.load1
        self.guests = {u: r for u, r in self.guests.items() if u in sample.guests}
        if previous is None:
            return
        seconds = sample.at - previous.at
        for uuid, counters in sample.guests.items():
            before = previous.guests.get(uuid)
            new = rate(before, counters, seconds) if before is not None else None
            if new is None:
                self.guests.pop(uuid, None)  # a new baseline: no rate until the next sample
                continue
            self.guests[uuid] = smoothed(self.guests.get(uuid), new, seconds, self.tau)

    def report(self) -> dict[str, object]:
        """The body of PUT /internal/v1/hosts/{host}/cpu-signal (kumo.agent.protocol.CpuSignal)."""
        return {
            "cores": self.cores,
            "load1": self.load1,
            "guests": {
                uuid: {"vcpus": r.vcpus, "run_cores": r.run_cores, "delay_cores": r.delay_cores}
                for uuid, r in sorted(self.guests.items())
            },
        }
