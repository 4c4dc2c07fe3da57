"""The API side of the agent protocol: register, heartbeat, hand out work, settle results."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.agent import tasks
from kumo.agent.models import Task
from kumo.agent.protocol import HostReport, PowerStates, TaskOut, TaskResult
from kumo.compute import hosts, server_ops
from kumo.compute.models import Instance
from kumo.errors import NotFound


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
    hosts.heartbeat(session, report.name)


def pending_work(session: Session, host: str, busy: list[str]) -> list[TaskOut]:
    return [
        TaskOut(
            id=t.id, kind=t.kind, instance_uuid=t.instance_uuid, payload=t.payload, request_id=t.request_id
        )
        for t in tasks.pending_for_host(session, host, exclude=busy)
    ]


def complete(session: Session, task_id: str, result: TaskResult) -> None:
    task = session.get(Task, task_id, with_for_update=True)
    if task is None:
        raise NotFound(f"Task {task_id} not found")
    payload = {"power_state": result.power_state, "error": result.error, **result.details}
    server_ops.settle(session, task, result.ok, payload)


def sync_power_states(session: Session, host: str, report: PowerStates) -> None:
    if not report.states:
        return
    rows = session.scalars(
        select(Instance).where(Instance.uuid.in_(list(report.states)), Instance.host == host)
    )
    for instance in rows:
        server_ops.sync_power_state(instance, report.states[instance.uuid])
