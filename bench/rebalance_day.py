"""A simulated day of the noisy-neighbour rebalancer (docs/rebalancer.md), off and on.

Fleet (as the research prototype, rebalancer-notes.md §A4.5): hosts of 20 cores and 384 GiB in
two AZs, VMs of 2/4/8 vCPUs (2 or 4 GiB per vCPU, 1-30 GiB overlay), 40 roles, 15 % of them in
hard anti-affinity groups of up to 3, 5 % tagged `kumo:rebalance=never`, random-fit placement.
Load: a shared diurnal curve peaking at 12:15, 15:00 and 22:00, each VM's own base, amplitude
and phase, lognormal minute noise, and batch hogs (4 % of VMs) pinning all their vCPUs for
1-4 h. Physics: per host per minute, each runnable vCPU loses f = max(0, 1 - 0.95 C / D) of
what it wanted; a running migration costs 0.5 core on both ends and ends after its predicted
seconds.

What is kumo's own: the signal's smoothing (kumo.agent.cpu_signal.smoothed, tau 60 s) and
trigger (kumo.rebalance.core.advance_hot_rounds), the planner (kumo.rebalance.core.plan with
the scheduler's filters) every minute over a kumo.rebalance.core.Snapshot, and the policy's
caps and cooldowns. What is simulated here: the hosts (the fake driver's model at minute
resolution) and the executor (moves start when planned and respect the plan's caps; the real
executor's database and hooks are not in the loop).

    .venv/bin/python bench/rebalance_day.py --seeds 1 2 3
    .venv/bin/python bench/rebalance_day.py --plan-only --hosts 1000 --vms 12500

Prints one JSON line per run and the targets of issue 20 checked.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass, field

from kumo.agent.cpu_signal import GuestRate, smoothed
from kumo.rebalance import core
from kumo.scheduler import GroupSpec, HostState
from kumo.scheduler import Snapshot as PlacementSnapshot

CORES, RAM_GIB = 20.0, 384
BUSY_MINUTE = 0.5  # a VM-minute counts in the busy-minute percentiles at this demand per vCPU
MINUTES = 1440


@dataclass
class Vm:
    uuid: str
    vcpus: int
    ram_mib: int
    disk_delta_mib: int
    role: str
    base: float
    amp: float
    phase: float
    excluded: bool
    group: GroupSpec | None
    host: str = ""
    hog: tuple[int, int] = (-1, -1)
    demand: float = 0.0
    rate: GuestRate | None = None
    hot_rounds: int = 0
    moves: list[core.PastMove] = field(default_factory=list)
    migrating_until: int = -1
    steal: list[float] = field(default_factory=list)


def diurnal(minute: float) -> float:
    h = minute / 60.0
    base = 0.35 + 0.25 * math.sin((h - 9) / 24 * 2 * math.pi) ** 2 * (1 if 8 <= h <= 24 else 0.3)
    peaks = ((12.25, 0.55, 0.6), (15.0, 0.35, 0.8), (22.0, 0.65, 1.0))
    return base + sum(a * math.exp(-((h - c) ** 2) / (2 * w * w)) for c, a, w in peaks)


def build(n_hosts: int, n_vms: int, seed: int, hogs: float) -> tuple[dict[str, HostState], dict[str, Vm]]:
    rnd = random.Random(seed)
    hosts = {
        f"h{i:04d}": HostState(
            name=f"h{i:04d}",
            provider_id=i + 1,
            generation=0,
            availability_zone=f"az{i % 2}",
            rack=f"r{i // 10}",
            capacity={"VCPU": int(CORES * 16), "MEMORY_MB": RAM_GIB * 1024, "DISK_GB": 100000},
            used={"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0},
        )
        for i in range(n_hosts)
    }
    names = sorted(hosts)
    open_groups = {g: 3 for g in range(n_vms // 20)}
    vms: dict[str, Vm] = {}
    members: dict[str, set[str]] = {}
    for j in range(n_vms):
        vcpus = rnd.choices([2, 4, 8], [0.5, 0.35, 0.15])[0]
        group = None
        if open_groups and rnd.random() < 0.15:
            g = rnd.choice(list(open_groups))
            open_groups[g] -= 1
            if not open_groups[g]:
                del open_groups[g]
            group = GroupSpec(f"g{g}", "anti-affinity")
        vm = Vm(
            uuid=f"vm{j:05d}",
            vcpus=vcpus,
            ram_mib=int(vcpus * rnd.choice([2, 4]) * 1024),
            disk_delta_mib=int(rnd.uniform(1, 30) * 1024),
            role=f"role{rnd.randrange(40)}",
            base=rnd.uniform(0.10, 0.30),
            amp=rnd.uniform(0.5, 1.4),
            phase=rnd.uniform(-20, 20),
            excluded=rnd.random() < 0.05,
            group=group,
        )
        if rnd.random() < hogs:
            start = int(rnd.uniform(9 * 60, 22 * 60))
            vm.hog = (start, start + int(rnd.uniform(60, 240)))
        for _ in range(1000):
            h = hosts[rnd.choice(names)]
            if h.used["MEMORY_MB"] + vm.ram_mib > h.capacity["MEMORY_MB"]:
                continue
            if group is not None and h.name in members.get(group.uuid, set()):
                continue
            vm.host = h.name
            hosts[h.name] = h.with_claim({"VCPU": vcpus, "MEMORY_MB": vm.ram_mib, "DISK_GB": 10})
            if group is not None:
                members.setdefault(group.uuid, set()).add(h.name)
            break
        vms[vm.uuid] = vm
    return hosts, {u: v for u, v in vms.items() if v.host}


def demand_at(vm: Vm, minute: int, rnd: random.Random) -> float:
    if vm.hog[0] <= minute < vm.hog[1]:
        return float(vm.vcpus)
    u = vm.base * (1 + vm.amp * (diurnal(minute + vm.phase) - 0.6)) * math.exp(rnd.gauss(0, 0.12))
    return max(0.02, min(1.0, u)) * vm.vcpus


def snapshot(
    hosts: dict[str, HostState], vms: dict[str, Vm], minute: int, inflight: list[tuple[int, str, str, str]]
) -> core.Snapshot:
    groups: dict[str, dict[str, int]] = {}
    for vm in vms.values():
        if vm.group is not None:
            per = groups.setdefault(vm.group.uuid, {})
            per[vm.host] = per.get(vm.host, 0) + 1
    out: dict[str, int] = {}
    into: dict[str, int] = {}
    inbound: dict[str, float] = {}
    for _, uuid, src, dst in inflight:
        out[src] = out.get(src, 0) + 1
        into[dst] = into.get(dst, 0) + 1
        rate = vms[uuid].rate
        inbound[dst] = inbound.get(dst, 0.0) + (rate.demand if rate is not None else 0.0)
    cpu = {
        name: core.HostCpu(name, CORES, 0.0, out.get(name, 0), into.get(name, 0), inbound.get(name, 0.0))
        for name in hosts
    }
    states = tuple(
        core.VmState(
            uuid=vm.uuid,
            host=vm.host,
            project_id="p",
            vcpus=vm.vcpus,
            ram_mib=vm.ram_mib,
            disk_gb=10,
            disk_delta_mib=vm.disk_delta_mib,
            demand=vm.rate.demand if vm.rate else 0.0,
            steal_pct=vm.rate.steal_pct if vm.rate else 0.0,
            hot_rounds=vm.hot_rounds,
            movable_state=vm.migrating_until < minute,
            metadata={"role": vm.role, **({core.EXCLUDE_KEY: core.EXCLUDE_VALUE} if vm.excluded else {})},
            group=vm.group,
            moves=tuple(vm.moves),
        )
        for vm in vms.values()
    )
    placement = PlacementSnapshot.of(hosts.values(), groups)
    return core.Snapshot(minute * 60.0, placement, cpu, states, inflight=len(inflight))


def run(
    n_hosts: int,
    n_vms: int,
    seed: int,
    hogs: float,
    enabled: bool,
    policy: core.Policy,
    minutes: int = MINUTES,
    start: int = 0,
) -> dict[str, object]:
    """Minutes [start, start + minutes) of the day, the rebalancer `enabled` or not."""
    hosts, vms = build(n_hosts, n_vms, seed, hogs)
    rnd = random.Random(seed + 1)
    inflight: list[tuple[int, str, str, str]] = []  # (ends at minute, vm, source, destination)
    busy: list[float] = []
    lost_core_min = 0.0
    migrations = pingpong = violations = max_inflight = 0
    plan_seconds: list[float] = []
    for minute in range(start, start + minutes):
        for end, uuid, src, dst in [m for m in inflight if m[0] <= minute]:
            inflight.remove((end, uuid, src, dst))
            vm = vms[uuid]
            res = {"VCPU": vm.vcpus, "MEMORY_MB": vm.ram_mib, "DISK_GB": 10}
            hosts[src] = hosts[src].with_claim({k: -v for k, v in res.items()})
            hosts[dst] = hosts[dst].with_claim(res)
            vm.host, vm.rate, vm.hot_rounds = dst, None, 0  # a new QEMU process: a new baseline
        extra = {h: 0.0 for h in hosts}
        for _, _, src, dst in inflight:
            extra[src] += 0.5
            extra[dst] += 0.5
        on_host: dict[str, list[Vm]] = {h: [] for h in hosts}
        for vm in vms.values():
            vm.demand = demand_at(vm, minute, rnd)
            on_host[vm.host].append(vm)
        for name, guests in on_host.items():
            total = sum(v.demand for v in guests) + extra[name]
            f = 0.0 if total <= 0.95 * CORES else 1.0 - 0.95 * CORES / total
            for vm in guests:
                pct = 100.0 * f * vm.demand / vm.vcpus
                vm.steal.append(pct)
                lost_core_min += f * vm.demand
                if vm.demand / vm.vcpus >= BUSY_MINUTE:
                    busy.append(pct)
                raw = GuestRate(vm.vcpus, vm.demand * (1 - f), vm.demand * f)
                vm.rate = smoothed(vm.rate, raw, 60.0, 60.0)
                vm.hot_rounds = core.advance_hot_rounds(
                    vm.hot_rounds, vm.rate.steal_pct, vm.rate.demand / vm.vcpus, policy
                )
            groups = [v.group.uuid for v in guests if v.group is not None]
            violations += len(groups) != len(set(groups))
        if enabled:
            snap = snapshot(hosts, vms, minute, inflight)
            started = time.perf_counter()
            plan = core.plan(snap, policy)
            plan_seconds.append(time.perf_counter() - started)
            for move in plan.moves:
                vm = vms[move.server]
                violations += vm.excluded
                if any(m.source == move.destination and minute * 60.0 - m.at < 3600 for m in vm.moves):
                    pingpong += 1
                vm.moves.append(core.PastMove(minute * 60.0, move.source))
                vm.migrating_until = minute + max(1, math.ceil(move.est_seconds / 60))
                inflight.append((vm.migrating_until, vm.uuid, move.source, move.destination))
                migrations += 1
        out: dict[str, int] = {}
        into: dict[str, int] = {}
        for _, _, src, dst in inflight:
            out[src] = out.get(src, 0) + 1
            into[dst] = into.get(dst, 0) + 1
        if len(inflight) > policy.per_cloud or any(n > policy.per_host_out for n in out.values()):
            violations += 1
        if any(n > policy.per_host_in for n in into.values()):
            violations += 1
        max_inflight = max(max_inflight, len(inflight))
    busy.sort()
    busy = busy or [0.0]
    nb = len(busy)
    vm_p95 = [sorted(v.steal)[int(0.95 * len(v.steal))] for v in vms.values()]
    plan_seconds.sort()
    return {
        "seed": seed,
        "hosts": n_hosts,
        "vms": len(vms),
        "rebalancer": "on" if enabled else "off",
        "busy_p95_steal_pct": round(busy[min(nb - 1, int(0.95 * nb))], 2),
        "busy_p99_steal_pct": round(busy[min(nb - 1, int(0.99 * nb))], 2),
        "vms_p95_over_5pct": sum(1 for x in vm_p95 if x >= 5.0),
        "lost_core_minutes": round(lost_core_min),
        "migrations": migrations,
        "moved_vms": sum(1 for v in vms.values() if v.moves),
        "max_moves_one_vm": max((len(v.moves) for v in vms.values()), default=0),
        "pingpong_1h": pingpong,
        "violations": violations,
        "max_inflight": max_inflight,
        "plan_p99_ms": round(1000 * plan_seconds[int(0.99 * (len(plan_seconds) - 1))], 1)
        if plan_seconds
        else None,
    }


def plan_only(n_hosts: int, n_vms: int, seed: int, repeat: int) -> dict[str, object]:
    """plan() timed on a peak-hour fleet (12:15) with every VM's signal settled."""
    hosts, vms = build(n_hosts, n_vms, seed, 0.04)
    rnd = random.Random(seed)
    minute = 12 * 60 + 15
    for vm in vms.values():
        vm.demand = demand_at(vm, minute, rnd) if vm.hog[0] < 0 else float(vm.vcpus)
    totals: dict[str, float] = {}
    for vm in vms.values():
        totals[vm.host] = totals.get(vm.host, 0.0) + vm.demand
    for vm in vms.values():
        f = max(0.0, 1.0 - 0.95 * CORES / totals[vm.host]) if totals[vm.host] > 0.95 * CORES else 0.0
        vm.rate = GuestRate(vm.vcpus, vm.demand * (1 - f), vm.demand * f)
        vm.hot_rounds = 3 if vm.rate.steal_pct >= 5 and vm.demand / vm.vcpus >= 0.5 else 0
    snap = snapshot(hosts, vms, minute, [])
    times = []
    moves = 0
    for _ in range(repeat):
        started = time.perf_counter()
        plan = core.plan(snap)
        times.append(time.perf_counter() - started)
        moves = len(plan.moves)
    times.sort()
    return {
        "hosts": n_hosts,
        "vms": len(vms),
        "hot_hosts": len(plan.effect.hot_hosts),
        "moves": moves,
        "plan_median_ms": round(1000 * statistics.median(times), 1),
        "plan_max_ms": round(1000 * times[-1], 1),
    }


def check(off: dict[str, object], on: dict[str, object]) -> list[str]:
    """Issue 20's targets for one seed; the failed ones."""

    def n(row: dict[str, object], key: str) -> float:
        return float(row[key])  # type: ignore[arg-type]

    failed = []
    if n(on, "lost_core_minutes") > 0.5 * n(off, "lost_core_minutes"):
        failed.append("stolen CPU at least 50 % lower")
    if n(on, "busy_p95_steal_pct") > 2.5:
        failed.append("busy p95 steal <= 2.5 %")
    if n(on, "vms_p95_over_5pct") > 0.3 * n(off, "vms_p95_over_5pct"):
        failed.append("VMs with p95 steal >= 5 % at most 30 % of off")
    if n(on, "migrations") > 30 * n(on, "vms") / 1000:
        failed.append("<= 30 migrations per 1,000 VMs")
    if n(on, "pingpong_1h") or n(on, "violations"):
        failed.append("no ping-pong, no violations")
    if on["plan_p99_ms"] is not None and n(on, "plan_p99_ms") > 200:
        failed.append("plan() p99 <= 200 ms")
    return failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=80)
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--hogs", type=float, default=0.04)
    ap.add_argument("--minutes", type=int, default=MINUTES, help="simulate only N minutes")
    ap.add_argument("--start", type=int, default=0, help="from this minute of the day")
    ap.add_argument("--plan-only", action="store_true", help="time plan() on one peak-hour fleet")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument(
        "-p", "--policy", action="append", default=[], metavar="FIELD=VALUE", help="a Policy field"
    )
    args = ap.parse_args(argv)
    overrides: dict[str, object] = {}
    for item in args.policy:
        key, _, value = item.partition("=")
        default = getattr(core.Policy(), key)
        overrides[key] = value if isinstance(default, str) else type(default)(float(value))
    policy = core.Policy(**overrides)  # type: ignore[arg-type]
    if args.plan_only:
        print(json.dumps(plan_only(args.hosts, args.vms, args.seeds[0], args.repeat)))
        return 0
    failures = 0
    for seed in args.seeds:
        off = run(args.hosts, args.vms, seed, args.hogs, False, policy, args.minutes, args.start)
        on = run(args.hosts, args.vms, seed, args.hogs, True, policy, args.minutes, args.start)
        print(json.dumps(off))
        print(json.dumps(on))
        failed = check(off, on)
        failures += bool(failed)
        print(f"seed {seed}: " + ("all targets met" if not failed else "missed: " + "; ".join(failed)))
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
