"""Build the planner's snapshot (kumo.rebalance.core.Snapshot) from the database: the fleet as
the scheduler reads it, the latest CPU signal of each host and server, the rebalancer's moves
in flight and of the past day. Reads only."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.compute.fleet_snapshot import load_snapshot
from kumo.compute.models import Instance, ServerGroup
from kumo.compute.scheduling import request_for
from kumo.config import Settings
from kumo.errors import BadRequest
from kumo.rebalance import core
from kumo.rebalance.models import Action, HostCpuSignal, RebalanceMove, VmCpuSignal
from kumo.validation import MAX_INT

EPOCH = dt.datetime(1970, 1, 1)
ONGOING = "ONGOING"


def seconds(at: dt.datetime) -> float:
    return (at - EPOCH).total_seconds()


# Policy fields that act when an agent's CPU signal is recorded (kumo.rebalance.signal), cloud-wide
# with the default Policy, not when an audit plans: an audit may not set them (it would not work).
SIGNAL_ONLY = ("trigger_steal_pct", "busy")


def policy_from(parameters: dict[str, Any]) -> core.Policy:
    """An audit's parameters over the default policy: each key a Policy field of its type (a
    real int for an int field, a finite number in [0, MAX_INT] for a number), never one of
    SIGNAL_ONLY; anything else is a BadRequest."""
    fields = {f.name: f for f in dataclasses.fields(core.Policy)}
    values: dict[str, Any] = {}
    for key, value in (parameters or {}).items():
        if key in SIGNAL_ONLY:
            raise BadRequest(
                f"Rebalancer parameter {key!r} applies when agents report CPU signals, cloud-wide, "
                "not per audit: it cannot be set on an audit"
            )
        if key not in fields:
            raise BadRequest(f"Unknown rebalancer parameter {key!r}; known: {', '.join(sorted(fields))}")
        default = getattr(core.Policy(), key)
        if isinstance(default, bool) or isinstance(value, bool):
            ok = isinstance(value, bool) and isinstance(default, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and 0 <= value <= MAX_INT
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= MAX_INT
        else:
            ok = isinstance(value, str) and len(value) <= 255
        if not ok:
            raise BadRequest(f"Invalid value for rebalancer parameter {key!r}: {value!r}"[:300])
        if key == "candidates" and value not in ("all", "victims"):
            raise BadRequest("candidates must be 'all' or 'victims'")
        values[key] = type(default)(value) if not isinstance(default, str) else value
    return core.Policy(**values)


@dataclasses.dataclass(frozen=True)
class Scope:
    """What of Watcher's compute scope kumo applies: availability zones (none: all), and the
    instances, compute nodes and projects excluded. Other scope keys are accepted and ignored."""

    zones: frozenset[str] = frozenset()
    instances: frozenset[str] = frozenset()
    hosts: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset()


def scope_from(scope: list[Any]) -> Scope:
    """Watcher's `[{"compute": [{"availability_zones": [{"name": …}]}, {"exclude": [{"instances":
    [{"uuid": …}]}, {"compute_nodes": [{"name": …}]}, {"projects": [{"uuid": …}]}]}]}]`."""
    zones: set[str] = set()
    excluded: dict[str, set[str]] = {"instances": set(), "compute_nodes": set(), "projects": set()}
    if not isinstance(scope, list):
        raise BadRequest("Invalid audit scope: a list is expected")
    for part in scope:
        compute = part.get("compute") if isinstance(part, dict) else None
        for rule in compute if isinstance(compute, list) else []:
            if not isinstance(rule, dict):
                raise BadRequest(f"Invalid audit scope rule: {rule!r}")
            for zone in _listed(rule.get("availability_zones")):
                zones.add(str(zone.get("name")) if isinstance(zone, dict) else str(zone))
            for group in _listed(rule.get("exclude")):
                for key, key_field in (
                    ("instances", "uuid"),
                    ("compute_nodes", "name"),
                    ("projects", "uuid"),
                ):
                    for item in _listed(group.get(key)) if isinstance(group, dict) else []:
                        excluded[key].add(str(item.get(key_field)) if isinstance(item, dict) else str(item))
    return Scope(
        frozenset(zones),
        frozenset(excluded["instances"]),
        frozenset(excluded["compute_nodes"]),
        frozenset(excluded["projects"]),
    )


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"Invalid audit scope: {value!r} is not a list")
    return value


def ongoing_moves(session: Session) -> list[Action]:
    return list(session.scalars(select(Action).where(Action.state == ONGOING)))


def build(
    session: Session, settings: Settings, now: dt.datetime, scope: Scope | None = None
) -> core.Snapshot:
    """The planner's snapshot; with `scope`, hosts outside its zones or excluded are left out
    (neither hot nor destinations) and its excluded servers and projects never move."""
    scope = scope or Scope()
    fresh = now - dt.timedelta(seconds=settings.rebalance_signal_max_age_seconds)
    host_rows = {
        h.host: h for h in session.scalars(select(HostCpuSignal).where(HostCpuSignal.updated_at >= fresh))
    }
    vm_rows = {
        r.instance_uuid: r
        for r in session.scalars(select(VmCpuSignal).where(VmCpuSignal.updated_at >= fresh))
        if r.host in host_rows
    }
    instances = list(
        session.scalars(
            select(Instance).where(Instance.host.in_(list(host_rows)), Instance.deleted.is_(False))
        )
    )
    group_ids = {i.server_group for i in instances if i.server_group}
    groups = {
        g.uuid: g for g in session.scalars(select(ServerGroup).where(ServerGroup.uuid.in_(list(group_ids))))
    }
    placement = load_snapshot(
        session,
        settings.heartbeat_timeout_seconds,
        now=now,
        stock_exclusive=settings.stock_private_exclusive,
    )
    inflight = ongoing_moves(session)
    out: dict[str, int] = {}
    into: dict[str, int] = {}
    inbound_demand: dict[str, float] = {}
    for action in inflight:
        params = action.input_parameters
        src, dst = str(params.get("source_node", "")), str(params.get("destination_node", ""))
        out[src] = out.get(src, 0) + 1
        into[dst] = into.get(dst, 0) + 1
        inbound_demand[dst] = inbound_demand.get(dst, 0.0) + float(params.get("demand_cores", 0.0))
    past: dict[str, list[core.PastMove]] = {}
    since = now - dt.timedelta(days=1)
    for move in session.scalars(select(RebalanceMove).where(RebalanceMove.at >= since)):
        past.setdefault(move.instance_uuid, []).append(core.PastMove(seconds(move.at), move.source))
    demand_in_vms: dict[str, float] = {}
    vms = []
    for instance in instances:
        signal = vm_rows.get(instance.uuid)
        demand = signal.run_cores + signal.delay_cores if signal is not None else 0.0
        steal = 100.0 * signal.delay_cores / signal.vcpus if signal is not None and signal.vcpus else 0.0
        host = str(instance.host)
        demand_in_vms[host] = demand_in_vms.get(host, 0.0) + demand
        request = request_for(instance, groups.get(instance.server_group or ""))
        metadata = {str(k): str(v) for k, v in (instance.metadata_ or {}).items()}
        if instance.uuid in scope.instances or instance.project_id in scope.projects:
            metadata[core.EXCLUDE_KEY] = core.EXCLUDE_VALUE  # the audit's scope excludes it
        vms.append(
            core.VmState(
                uuid=instance.uuid,
                host=host,
                project_id=instance.project_id,
                vcpus=max(1, instance.vcpus),
                ram_mib=int(request.resources.get("MEMORY_MB", instance.memory_mb)),
                disk_gb=int(request.resources.get("DISK_GB", 0)),
                demand=demand,
                steal_pct=steal,
                hot_rounds=signal.hot_rounds if signal is not None else 0,
                movable_state=instance.vm_state == "active"
                and instance.task_state is None
                and not instance.locked,
                metadata=metadata,
                group=request.group,
                flavor_id=request.flavor_id,
                flavor_extra_specs=request.flavor_extra_specs,
                moves=tuple(past.get(instance.uuid, ())),
            )
        )
    cpu = {
        name: core.HostCpu(
            name,
            cores=row.cores,
            # what the host reports beyond its guests' demand counts as its own busy cores
            base_demand=max(0.0, row.demand_cores - demand_in_vms.get(name, 0.0)),
            out_inflight=out.get(name, 0),
            in_inflight=into.get(name, 0),
            inbound_demand=inbound_demand.get(name, 0.0),
        )
        for name, row in host_rows.items()
        if name in placement.hosts and _in_scope(placement.hosts[name].availability_zone, name, scope)
    }
    return core.Snapshot(seconds(now), placement, cpu, tuple(vms), inflight=len(inflight))


def _in_scope(zone: str | None, host: str, scope: Scope) -> bool:
    return host not in scope.hosts and (not scope.zones or zone in scope.zones)
