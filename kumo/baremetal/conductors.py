"""The API side of conductors: register + heartbeat (which also hands out node ownership and keeps
the owned nodes' hosts up) and power-state sync reports.

A conductor is alive while its heartbeat is younger than `heartbeat_timeout_seconds`. Ownership
is computed, never stored (kumo/baremetal/ownership.py), so a dead conductor's nodes move to the
others at their next heartbeat without any hand-over.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kumo.baremetal import hosts, ownership, states
from kumo.baremetal.models import Conductor, Node
from kumo.baremetal.protocol import ConductorAssignment, NodeForConductor, PowerStateReport
from kumo.compute import server_ops
from kumo.compute.models import ComputeHost, Instance
from kumo.compute.states import PowerState
from kumo.db import utcnow

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


def owner_of(session: Session, node_uuid: str, timeout: float) -> str | None:
    """The live conductor that owns the node now (for `conductor` in the node's view)."""
    return ownership.owner(node_uuid, live_conductors(session, timeout))


def heartbeat(session: Session, name: str, timeout: float) -> ConductorAssignment:
    """Register or refresh conductor `name`; return the live conductors and the nodes it owns.
    The owned nodes' hosts get their heartbeat in one UPDATE (per 10,000 nodes): a node is up
    while its conductor is."""
    now = utcnow()
    _touch(session, name, now)
    live = live_conductors(session, timeout, now)
    if name not in live:
        live = sorted({*live, name})
    uuids = ownership.owned_by(name, session.scalars(select(Node.uuid).order_by(Node.id)), live)
    mine: list[NodeForConductor] = []
    for start in range(0, len(uuids), _CHUNK):
        chunk = uuids[start : start + _CHUNK]
        session.execute(
            update(ComputeHost)
            .where(ComputeHost.name.in_(chunk))
            .values(last_heartbeat=now)
            .execution_options(synchronize_session=False)
        )
        mine.extend(node_for_conductor(n) for n in session.scalars(select(Node).where(Node.uuid.in_(chunk))))
    return ConductorAssignment(conductors=live, nodes=mine)


_INSTANCE_POWER = {states.POWER_ON: PowerState.RUNNING, states.POWER_OFF: PowerState.SHUTDOWN}


def report_power_states(session: Session, name: str, report: PowerStateReport) -> int:
    """Apply one batched power sync pass of conductor `name`. Nodes busy with a transition
    (a provision task, a power change in flight) are skipped: the task's result wins. A BMC that
    stops answering (null) counts a failure; after a few the node goes into maintenance with
    fault "power failure", and leaves it again when the BMC answers (Ironic's behaviour).
    Returns how many nodes changed."""
    if not report.nodes:
        return 0
    changed = 0
    wanted = list(report.nodes)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        servers: dict[str, str] = {}  # instance uuid -> power state seen
        for node in session.scalars(select(Node).where(Node.uuid.in_(chunk))):
            seen = report.nodes[node.uuid]
            if _apply_power(session, node, seen):
                changed += 1
            if seen is not None and node.instance_uuid and node.provision_state == states.ACTIVE:
                servers[node.instance_uuid] = seen
        if servers:
            for instance in session.scalars(select(Instance).where(Instance.uuid.in_(list(servers)))):
                server_ops.sync_power_state(instance, int(_INSTANCE_POWER[servers[instance.uuid]]))
    return changed


def _apply_power(session: Session, node: Node, seen: str | None) -> bool:
    if node.provision_state in states.TRANSIENT or node.target_power_state is not None:
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
