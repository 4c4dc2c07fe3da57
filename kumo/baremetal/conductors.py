"""The API side of conductors: register + heartbeat (which also hands out node ownership and keeps
the owned nodes' hosts up) and power-state sync reports.

A conductor is alive while its heartbeat is younger than `heartbeat_timeout_seconds`. Ownership
is computed, never stored (kumo/baremetal/ownership.py), so a dead conductor's nodes move to the
others at their next heartbeat without any hand-over.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kumo.baremetal import hosts, ownership, states
from kumo.baremetal.models import Conductor, Node
from kumo.baremetal.protocol import ConductorAssignment, NodeForConductor, PowerStateReport
from kumo.compute import server_ops
from kumo.compute.models import ComputeHost, Instance
from kumo.compute.states import PowerState
from kumo.db import utcnow
from kumo.errors import NotFound

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
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        pg = postgresql.insert(Conductor).values(values)
        session.execute(pg.on_conflict_do_update(index_elements=["name"], set_={"last_heartbeat": now}))
    else:
        lite = sqlite.insert(Conductor).values(values)
        session.execute(lite.on_conflict_do_update(index_elements=["name"], set_={"last_heartbeat": now}))


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


def owned_nodes(session: Session, name: str, live: list[str]) -> list[NodeForConductor]:
    """The nodes `name` owns among the `live` conductors, as it needs them. One read of a few
    columns of every node, ownership computed on the rows (no ORM objects, no bound lists)."""
    live = sorted({*live, name})
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
        if ownership.owner(u, live) == name
    ]


def keep_up(session: Session, node_uuids: list[str], timeout: float) -> None:
    """Heartbeat the hosts of a live conductor's nodes: one UPDATE per 10,000 nodes, writing only
    the rows whose heartbeat is older than a quarter of the timeout (a conductor beating every
    few seconds rewrites each row every few beats, not every beat)."""
    now = utcnow()
    stale = now - dt.timedelta(seconds=timeout / 4)
    for start in range(0, len(node_uuids), _CHUNK):
        session.execute(
            update(ComputeHost)
            .where(
                ComputeHost.name.in_(node_uuids[start : start + _CHUNK]),
                or_(ComputeHost.last_heartbeat.is_(None), ComputeHost.last_heartbeat < stale),
            )
            .values(last_heartbeat=now)
            .execution_options(synchronize_session=False)
        )


def heartbeat(session: Session, name: str, timeout: float) -> ConductorAssignment:
    """register, owned_nodes and keep_up in one session (tests, tools). The route runs them in
    three short transactions so the writer is held only for the writes."""
    live = register(session, name, timeout)
    nodes = owned_nodes(session, name, live)
    keep_up(session, [n.uuid for n in nodes], timeout)
    return ConductorAssignment(conductors=live, nodes=nodes)


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
            server_ops.sync_power_state(instance, int(_INSTANCE_POWER[seen[instance.uuid]]))


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
