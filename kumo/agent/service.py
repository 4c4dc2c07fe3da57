"""The API side of the agent protocol: register, heartbeat, hand out work, settle results."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from collections.abc import Set as AbstractSet
from functools import cache
from typing import Any, cast

from sqlalchemy import CursorResult, Select, Update, bindparam, select, update
from sqlalchemy.orm import Session

from kumo.agent.protocol import HostReport, HostTask, PowerStates, TaskOut, TaskReport, TaskResult
from kumo.compute import hosts, server_ops
from kumo.compute import lifecycle as lc
from kumo.compute.lifecycle_apply import state_of, write
from kumo.compute.models import ComputeHost, Instance
from kumo.db import Database, durable_before_it_leaves, utcnow
from kumo.db.transient import describe, is_transient, without_parameters
from kumo.errors import NotFound
from kumo.store.protocol import Store, store_of
from kumo.work import hooks as work_hooks
from kumo.work import queue
from kumo.work.models import Task

log = logging.getLogger(__name__)


def register(session: Session, report: HostReport) -> None:
    hosts.register_host(
        session,
        report.name,
        vcpus=report.vcpus,
        memory_mb=report.memory_mb,
        disk_gb=report.disk_gb,
        hypervisor_type=report.hypervisor_type,
        host_ip=report.host_ip,
        cpu_allocation_ratio=report.cpu_allocation_ratio,
        ram_allocation_ratio=report.ram_allocation_ratio,
        disk_allocation_ratio=report.disk_allocation_ratio,
        reserved_memory_mb=report.reserved_memory_mb,
    )
    if report.rack is not None or report.region is not None:
        hosts.set_labels(session, report.name, rack=report.rack, region=report.region)
    hosts.heartbeat(session, report.name)


def heartbeat_many(session: Session, names: Collection[str], chunk: int = 1000) -> list[str]:
    """Heartbeat every host in `names` (hosts.heartbeat for many, as one agent process serving
    several hosts reports them: `PUT /internal/v1/heartbeats`), one UPDATE per `chunk` names;
    returns the names no host has (their agents must register again)."""
    now = utcnow()
    wanted = sorted(set(names))
    unknown: list[str] = []
    statement = _heartbeat_statement(store_of(session))
    for start in range(0, len(wanted), chunk):
        part = wanted[start : start + chunk]
        result = cast(CursorResult[Any], session.connection().execute(statement, {"names": part, "now": now}))
        if result.rowcount != len(part):
            known = set(session.scalars(select(ComputeHost.name).where(ComputeHost.name.in_(part))))
            unknown += [name for name in part if name not in known]
    return unknown


# The fleet's heartbeats and task polls run these many times a second: built once (per store),
# they cost no statement construction per request, and leave no statement behind as garbage
# (a statement is a reference cycle: see kumo.gc_tuning).
@cache
def _heartbeat_statement(store: Store) -> Update:
    return (
        update(ComputeHost)
        .where(store.one_of_param(ComputeHost.name, "names"))
        .values(last_heartbeat=bindparam("now", type_=ComputeHost.last_heartbeat.type))
    )


_HOSTS_WITH_WORK = select(Task.host).where(Task.state == "pending").distinct()


@cache
def _pending_of_hosts_statement(store: Store) -> Select[Task]:
    return select(Task).where(store.one_of_param(Task.host, "hosts"), Task.state == "pending")


def pending_work(session: Session, host: str, busy: list[str]) -> list[TaskOut]:
    found = [
        TaskOut(
            id=t.id, kind=t.kind, instance_uuid=t.instance_uuid, payload=t.payload, request_id=t.request_id
        )
        for t in queue.pending_for_host(session, host, exclude=busy)
    ]
    if found:
        durable_before_it_leaves(session)  # a scheduling pass commits asynchronously
    return found


def pending_fleet_work(
    session: Session, hosts: AbstractSet[str], busy: Collection[str], limit: int = 1000
) -> list[HostTask]:
    """Pending work of any of `hosts` except `busy`, oldest first. Two reads that the
    (host, state) index answers: which hosts have pending work at all (few), then their tasks.
    The host list is filtered here rather than sent to the database: it may hold tens of
    thousands of names, more than one statement may bind."""
    with_work = sorted(h for h in session.scalars(_HOSTS_WITH_WORK) if h in hosts)
    skip = set(busy)
    found: list[Task] = []
    statement = _pending_of_hosts_statement(store_of(session))
    for start in range(0, len(with_work), 500):
        rows = session.scalars(statement, {"hosts": with_work[start : start + 500]})
        found.extend(t for t in rows if t.id not in skip)
    found.sort(key=lambda t: (t.created_at, t.id))
    if found:
        durable_before_it_leaves(session)  # a scheduling pass commits asynchronously
    return [
        HostTask(
            id=t.id,
            host=t.host,
            kind=t.kind,
            instance_uuid=t.instance_uuid,
            payload=t.payload,
            request_id=t.request_id,
        )
        for t in found[:limit]
    ]


def complete_all(db: Database, reports: Sequence[TaskReport]) -> None:
    """Settle a batch of agents' results: in one transaction while every one of them applies;
    when one raises (not for the database's sake), again each in a savepoint of its own, so that
    the one that cannot be applied fails its own task (server_ops.fail_unsettled) and the
    others are applied: the batch is accepted, and the agent has nothing to resend forever. An
    error of the database's own (kumo.db.transient) refuses the batch; the agent resends it."""
    ids = [report.task_id for report in reports]
    try:
        with db.transaction() as session:
            work_hooks.lock_first(session, ids)  # e.g. their precache jobs' rows: before their tasks
            boots = [complete(session, report.task_id, report) for report in reports]
        server_ops.record_boots(boots)  # committed: counted once
        return
    except Exception as error:
        if is_transient(error):
            raise
        log.warning("a batch of %d results failed (%s); settling each alone", len(reports), describe(error))
    with db.transaction() as session:
        work_hooks.lock_first(session, ids)
        boots = [_complete_alone(session, report) for report in reports]
    server_ops.record_boots(boots)


def _complete_alone(session: Session, report: TaskReport) -> server_ops.Boot | None:
    """The boot its result ended, only when its savepoint was released (a rolled-back one
    counts nothing)."""
    try:
        with session.begin_nested():
            boot = complete(session, report.task_id, report)
        return boot
    except NotFound:
        log.warning("result for unknown task %s ignored", report.task_id)
        return None
    except Exception as error:
        if is_transient(error):
            raise
        without_parameters(error)  # neither the log nor the fault may show the row's values
        log.exception("applying the result of task %s failed", report.task_id)
        why = f"Applying the task's result failed: {describe(error)}"
    try:
        with session.begin_nested():
            server_ops.fail_unsettled(session, report.task_id, why[:1000])
    except Exception as error:  # its server cannot even be marked: fail the task row alone
        if is_transient(error):
            raise
        log.error("task %s: marking its server failed raised %s", report.task_id, describe(error))
        with session.begin_nested():
            queue.fail_pending(session, report.task_id, why[:1000])
    return None


def complete(session: Session, task_id: str, result: TaskResult) -> server_ops.Boot | None:
    task = session.get(Task, task_id, with_for_update=True)
    if task is None:
        raise NotFound(f"Task {task_id} not found")
    payload = {"power_state": result.power_state, "error": result.error, **result.details}
    return server_ops.settle(session, task, result.ok, payload)


def sync_power_states(session: Session, host: str, report: PowerStates) -> None:
    if not report.states:
        return
    rows = session.scalars(
        select(Instance).where(Instance.uuid.in_(list(report.states)), Instance.host == host)
    )
    for instance in rows:
        write(instance, lc.power_observed(state_of(instance), report.states[instance.uuid]))
