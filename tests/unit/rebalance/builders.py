"""Fleets for planner tests: hosts of 4 cores and 16 GiB, servers of 1 vCPU and 1 GiB."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kumo.rebalance.core import HostCpu, Snapshot, VmState
from kumo.scheduler import HostState
from kumo.scheduler import Snapshot as PlacementSnapshot


def host(name: str, az: str = "az1", cores: float = 4.0, **cpu: Any) -> tuple[HostState, HostCpu]:
    state = HostState(
        name=name,
        provider_id=abs(hash(name)) % 10**6,
        generation=0,
        availability_zone=az,
        capacity={"VCPU": 64, "MEMORY_MB": 16384, "DISK_GB": 1000},
        used={"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0},
    )
    return state, HostCpu(name, cores, **cpu)


def vm(uuid: str, on: str, demand: float = 0.5, steal: float = 0.0, hot: int = 0, **kw: Any) -> VmState:
    base = VmState(uuid=uuid, host=on, project_id="p", vcpus=1, ram_mib=1024, disk_gb=1)
    return replace(base, demand=demand, steal_pct=steal, hot_rounds=hot, **kw)


VICTIM = {"steal": 20.0, "hot": 3}


def fleet(
    hosts: list[tuple[HostState, HostCpu]], vms: list[VmState], now: float = 100000.0, inflight: int = 0
) -> Snapshot:
    used: dict[str, dict[str, int]] = {h.name: {"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0} for h, _ in hosts}
    groups: dict[str, dict[str, int]] = {}
    for v in vms:
        if v.host in used:
            u = used[v.host]
            u["VCPU"] += v.vcpus
            u["MEMORY_MB"] += v.ram_mib
            u["DISK_GB"] += v.disk_gb
        if v.group is not None:
            members = groups.setdefault(v.group.uuid, {})
            members[v.host] = members.get(v.host, 0) + 1
    states = [replace(h, used=used[h.name]) for h, _ in hosts]
    placement = PlacementSnapshot.of(states, groups)
    return Snapshot(
        now=now, placement=placement, cpu={c.name: c for _, c in hosts}, vms=tuple(vms), inflight=inflight
    )
