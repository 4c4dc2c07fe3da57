"""The API side of conductors: register + heartbeat (which also hands out node ownership and keeps
the nodes' hosts up) and power-state sync reports.

A conductor is alive while its heartbeat is younger than `heartbeat_timeout_seconds`. Ownership
is computed, never stored (kumo/baremetal/ownership.py), so a dead conductor's nodes move to the
others at their next heartbeat without any hand-over. A heartbeat where nothing changed reads no
node and writes no host (kumo/baremetal/assignments.py, keep_up).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from kumo.baremetal import assignments, hosts, ownership, states
from kumo.baremetal.models import Conductor, Node
from kumo.baremetal.protocol import ConductorAssignment, NodeForConductor, PowerStateReport
from kumo.compute import lifecycle as lc
from kumo.compute.lifecycle_apply import state_of, write
from kumo.compute.models import ComputeHost, Instance
from kumo.compute.states import PowerState
from kumo.db import utcnow
from kumo.errors import NotFound
from kumo.store.protocol import store_of

log = logging.getLogger(__name__)
# Consecutive failed power syncs before a node goes into maintenance (Ironic's
# power_state_sync_max_retries).
POWER_SYNC_MAX_FAILURES = 3
POWER_FAILURE = "power failure"
# Bind at most this many host names per UPDATE (SQLite and PostgreSQL both cap parameters).
_CHUNK = 10_000


def node_for_conductor(node: Node) -> NodeForConductor:
    return NodeForConductor(
        uuid=node.uuid,
        name=node.name,
        driver=node.driver,
        driver_info=dict(node.driver_info or {}),
        power_state=node.power_state,
        provision_state=node.provision_state,
        maintenance=node.maintenance,
        instance_uuid=node.instance_uuid,
    )


def _touch(session: Session, name: str, now: dt.datetime) -> None:
    """Insert or refresh the conductor's row in one statement (no race between two new ones)."""
    values = {"name": name, "last_heartbeat": now, "created_at": now}
    insert: Any = store_of(session).insert(Conductor).values(values)
    session.execute(insert.on_conflict_do_update(index_elements=["name"], set_={"last_heartbeat": now}))


def live_conductors(session: Session, timeout: float, now: dt.datetime | None = None) -> list[str]:
    since = (now or utcnow()) - dt.timedelta(seconds=timeout)
    return sorted(session.scalars(select(Conductor.name).where(Conductor.last_heartbeat >= since)))


def all_conductors(session: Session) -> list[Conductor]:
    return list(session.scalars(select(Conductor).order_by(Conductor.name)))


def get_conductor(session: Session, name: str) -> Conductor:
    found = session.get(Conductor, name)
    if found is None:
        raise NotFound(f"Conductor {name} could not be found.")
    return found


def owner_of(session: Session, node_uuid: str, timeout: float) -> str | None:
    """The live conductor that owns the node now (for `conductor` in the node's view)."""
    return ownership.owner(node_uuid, live_conductors(session, timeout))


def register(session: Session, name: str, timeout: float) -> list[str]:
    """Register or refresh conductor `name`; the live conductors (itself included)."""
    now = utcnow()
    _touch(session, name, now)
    live = live_conductors(session, timeout, now)
    return live if name in live else sorted({*live, name})


_WIRE_COLUMNS = (
    Node.uuid,
    Node.name,
    Node.driver,
    Node.driver_info,
    Node.power_state,
    Node.provision_state,
    Node.maintenance,
    Node.instance_uuid,
)


def _wire_nodes(session: Session, wanted: Callable[[str], bool]) -> list[NodeForConductor]:
    """The nodes `wanted` keeps, as a conductor needs them: one read of a few columns of every
    node (no ORM objects, no bound lists)."""
    return [
        NodeForConductor.model_construct(
            uuid=u,
            name=n,
            driver=d,
            driver_info=dict(info or {}),
            power_state=p,
            provision_state=ps,
            maintenance=bool(m),
            instance_uuid=i,
        )
        for u, n, d, info, p, ps, m, i in session.execute(select(*_WIRE_COLUMNS).order_by(Node.id))
        if wanted(u)
    ]


def owned_nodes(session: Session, name: str, live: list[str]) -> list[NodeForConductor]:
    """The nodes `name` owns among the `live` conductors, ownership computed on the rows."""
    live = sorted({*live, name})
    return _wire_nodes(session, lambda u: ownership.owner(u, live) == name)


def assignment(session: Session, name: str, live: list[str], held: str | None = None) -> ConductorAssignment:
    """What `name` owns among the `live` conductors, and its version. When `held` (the version
    the conductor holds) is still current the answer is "unchanged" and carries no node: no node
    is read, only the ones written since the last heartbeat (kumo/baremetal/assignments.py)."""
    view = assignments.view_for(session)
    with view.lock:
        view.refresh(session)
        owned = view.owned(name, live)
    if held is not None and held == owned.version:
        return ConductorAssignment.model_construct(
            conductors=live, assignment=owned.version, unchanged=True, nodes=None
        )
    # The rows read now are at least as new as the view: at worst the conductor holds a newer
    # node than its version says, and gets the list again at its next heartbeat.
    nodes = _wire_nodes(session, owned.nodes.__contains__)
    return ConductorAssignment.model_construct(
        conductors=live, assignment=owned.version, unchanged=False, nodes=nodes
    )


def keep_up_due(session: Session, timeout: float) -> bool:
    """Whether a heartbeat should run keep_up: when nodes appeared since it last ran in this
    process (their hosts are up from the next heartbeat on, as before), or when the host of one
    node (every node's host is written in the same statement, so they move together) has a
    heartbeat a quarter of the timeout old. Every API process reads the same row, so they do
    not each keep the fleet up on their own clock. One row read by its key."""
    view = assignments.view_for(session)
    with view.lock:
        if view.new_nodes:
            return True
        sample = view.sample
    if sample is None:  # no node
        return False
    beat = session.scalar(select(ComputeHost.last_heartbeat).where(ComputeHost.name == sample))
    return beat is None or utcnow() - beat >= dt.timedelta(seconds=timeout / 4)


def keep_up(session: Session, timeout: float) -> int:
    """Keep the hosts of every node up while a conductor lives: one UPDATE, no bound list,
    writing the rows whose heartbeat is older than an eighth of the timeout (so two API processes
    that find it due together write the fleet once). Every node has a live owner while any
    conductor is alive (ownership is rendezvous hashing over the live ones), so "the hosts of the
    nodes the live conductors own" is "the hosts of every node", whichever conductor beats.

    Run when due (keep_up_due), a host's heartbeat is at most 3/8 of the timeout plus one
    heartbeat interval old while a conductor lives (before: a quarter plus one interval), goes
    stale within the timeout once the last conductor is gone, and is rewritten about once per
    quarter of the timeout plus half an interval, as before. Returns the rows written."""
    view = assignments.view_for(session)
    with view.lock:
        view.new_nodes = False
    now = utcnow()
    stale = now - dt.timedelta(seconds=timeout / 8)
    result = session.execute(
        update(ComputeHost)
        .where(
            ComputeHost.name.in_(select(Node.uuid).scalar_subquery()),
            or_(ComputeHost.last_heartbeat.is_(None), ComputeHost.last_heartbeat < stale),
        )
        .values(last_heartbeat=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def heartbeat(session: Session, name: str, timeout: float, held: str | None = None) -> ConductorAssignment:
    """register, assignment and keep_up in one session (tests, tools). The route runs them in
    short transactions so the writer is held only for the writes."""
    live = register(session, name, timeout)
    answer = assignment(session, name, live, held)
    if keep_up_due(session, timeout):
        keep_up(session, timeout)
    return answer


# Not synced: nodes whose task is in flight (its result wins), and nodes not yet verified (their
# BMC may not be configured yet; Ironic skips enroll too).
_NO_SYNC = states.TRANSIENT | {states.ENROLL}
_INSTANCE_POWER = {states.POWER_ON: PowerState.RUNNING, states.POWER_OFF: PowerState.SHUTDOWN}


def report_power_states(session: Session, name: str, report: PowerStateReport) -> int:
    """Apply one batched power sync pass of conductor `name`. Nodes busy with a transition
    (a provision task, a power change in flight) are skipped: the task's result wins. A BMC that
    stops answering (null) counts a failure; after a few the node goes into maintenance with
    fault "power failure", and leaves it again when the BMC answers (Ironic's behaviour). The
    servers on active nodes follow their machine's power.

    Built for a conductor's whole fleet in one call: columns are read, not rows; plain power
    changes are one bulk UPDATE by primary key; only the rare nodes with failures go through
    ORM objects. A pass where nothing changed writes nothing. Returns how many nodes changed."""
    if not report.nodes:
        return 0
    changed = 0
    wanted = list(report.nodes)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        simple: list[dict[str, Any]] = []
        special: list[int] = []
        servers: dict[str, str] = {}  # instance uuid -> power state seen
        rows = session.execute(
            select(
                Node.id,
                Node.uuid,
                Node.power_state,
                Node.provision_state,
                Node.target_power_state,
                Node.fault,
                Node.power_sync_failures,
                Node.instance_uuid,
            ).where(Node.uuid.in_(chunk))
        )
        for node_id, node_uuid, power, provision, target, fault, failures, instance_uuid in rows:
            seen = report.nodes[node_uuid]
            if provision in _NO_SYNC or target is not None:
                continue
            if seen is None or failures or fault == POWER_FAILURE:
                special.append(node_id)
            elif power != seen:
                simple.append({"id": node_id, "power_state": seen})
            if seen is not None and instance_uuid and provision == states.ACTIVE:
                servers[instance_uuid] = seen
        if simple:
            session.execute(update(Node), simple)
            changed += len(simple)
        if special:
            for node in session.scalars(select(Node).where(Node.id.in_(special))):
                if _apply_power(session, node, report.nodes[node.uuid]):
                    changed += 1
        _sync_servers(session, servers)
    return changed


def _sync_servers(session: Session, seen: dict[str, str]) -> None:
    """Servers whose recorded power differs from their machine's (a column read first; only
    those are loaded and reconciled by the compute state machine)."""
    if not seen:
        return
    rows = session.execute(
        select(Instance.id, Instance.uuid, Instance.power_state).where(
            Instance.uuid.in_(list(seen)), Instance.deleted.is_(False), Instance.task_state.is_(None)
        )
    )
    differ = [i for i, u, p in rows if p != int(_INSTANCE_POWER[seen[u]])]
    if differ:
        for instance in session.scalars(select(Instance).where(Instance.id.in_(differ))):
            observed = lc.power_observed(state_of(instance), int(_INSTANCE_POWER[seen[instance.uuid]]))
            write(instance, observed)


def _apply_power(session: Session, node: Node, seen: str | None) -> bool:
    if node.provision_state in _NO_SYNC or node.target_power_state is not None:
        return False
    if seen is None:
        node.power_sync_failures = (node.power_sync_failures or 0) + 1
        if node.power_sync_failures >= POWER_SYNC_MAX_FAILURES and not node.maintenance:
            node.maintenance = True
            node.fault = POWER_FAILURE
            node.maintenance_reason = (
                f"During sync_power_state, max retries exceeded for node {node.uuid}, node state "
                f"{node.power_state} does not match expected state 'None'. Updating DB state to 'None' "
                "Switching node to maintenance mode. Error: the BMC did not answer"
            )
            node.last_error = node.maintenance_reason
            hosts.sync_inventory(session, node)
            return True
        return False
    changed = False
    if node.power_sync_failures:
        node.power_sync_failures = 0
    if node.fault == POWER_FAILURE:
        node.maintenance, node.fault, node.maintenance_reason = False, None, None
        hosts.sync_inventory(session, node)
        changed = True
    if node.power_state != seen:
        node.power_state = seen
        changed = True
    return changed
