"""The CPU signal as the API keeps it: each report of a host's agent replaces that host's row and
its servers' rows (the latest smoothed rates; no history), and advances each server's trigger
count by one round (kumo.rebalance.core.advance_hot_rounds)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo import metrics
from kumo.compute.models import Instance
from kumo.db.base import utcnow
from kumo.rebalance.core import Policy, advance_hot_rounds
from kumo.rebalance.models import HostCpuSignal, VmCpuSignal


@dataclass(frozen=True)
class GuestCpu:
    vcpus: int
    run_cores: float
    delay_cores: float

    @property
    def steal_pct(self) -> float:
        return 100.0 * self.delay_cores / self.vcpus if self.vcpus else 0.0

    @property
    def busy(self) -> float:
        return (self.run_cores + self.delay_cores) / self.vcpus if self.vcpus else 0.0


def record(
    session: Session, host: str, cores: float, load1: float, guests: Mapping[str, GuestCpu], policy: Policy
) -> None:
    """Store `host`'s report. Only servers kumo places on that host are kept; the host's rows of
    servers missing from the report (gone, moved away) are deleted."""
    known = set(
        session.scalars(select(Instance.uuid).where(Instance.host == host, Instance.uuid.in_(list(guests))))
    )
    rows = {r.instance_uuid: r for r in session.scalars(select(VmCpuSignal).where(VmCpuSignal.host == host))}
    moved_in = {
        r.instance_uuid: r
        for r in session.scalars(
            select(VmCpuSignal).where(VmCpuSignal.instance_uuid.in_(list(known - set(rows))))
        )
    }
    now = utcnow()
    for uuid in sorted(known):
        cpu = guests[uuid]
        row = rows.pop(uuid, None) or moved_in.get(uuid)
        if row is None:
            row = VmCpuSignal(instance_uuid=uuid, hot_rounds=0)
            session.add(row)
        elif row.host != host:
            row.hot_rounds = 0  # arrived by a move: the trigger starts again here
        row.host, row.vcpus = host, cpu.vcpus
        row.run_cores, row.delay_cores = cpu.run_cores, cpu.delay_cores
        row.hot_rounds = advance_hot_rounds(row.hot_rounds or 0, cpu.steal_pct, cpu.busy, policy)
        row.updated_at = now
    if rows:
        session.execute(
            delete(VmCpuSignal).where(VmCpuSignal.host == host, VmCpuSignal.instance_uuid.in_(list(rows)))
        )
    demand = sum(guests[u].run_cores + guests[u].delay_cores for u in known)
    steal = sum(guests[u].delay_cores for u in known)
    row_host = session.get(HostCpuSignal, host)
    if row_host is None:
        row_host = HostCpuSignal(host=host)
        session.add(row_host)
    row_host.cores, row_host.load1, row_host.demand_cores, row_host.steal_cores = cores, load1, demand, steal
    row_host.updated_at = now


def host_signal(session: Session, host: str) -> tuple[HostCpuSignal | None, list[VmCpuSignal]]:
    rows = session.scalars(
        select(VmCpuSignal).where(VmCpuSignal.host == host).order_by(VmCpuSignal.instance_uuid)
    )
    return session.get(HostCpuSignal, host), list(rows)


def signal_gauges(session: Session) -> None:
    """Set the rebalancer's scrape-time gauges from the stored reports."""
    metrics.HOST_STEAL_CORES.clear()
    total = 0.0
    for row in session.scalars(select(HostCpuSignal)):
        total += row.demand_cores
        if row.steal_cores > 0:
            metrics.HOST_STEAL_CORES.labels(row.host).set(row.steal_cores)
    metrics.HOST_CPU_DEMAND.set(total)
