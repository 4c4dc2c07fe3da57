"""Server actions (start, stop, reboot, rebuild, reset, lock) and settling agents' results;
the moves (migrate, resize confirm / revert) start in kumo.compute.moves.

Invariants: every state change here is decided by kumo.compute.lifecycle and written by
kumo.compute.lifecycle_apply, in the caller's transaction (the action and its event, the task
for the host's agent); the caller wakes the agent after commit with the host name returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo import metrics
from kumo.api.context import RequestContext
from kumo.compute import actions, keypairs, quotas, servers, states
from kumo.compute import lifecycle as lc
from kumo.compute.lifecycle_apply import Requester, apply, apply_if, state_of, state_or_none
from kumo.compute.models import ComputeHost, Instance
from kumo.compute.node_hosts import BAREMETAL_HYPERVISOR_TYPE
from kumo.errors import BadRequest, InvalidState
from kumo.image.service import get_image_for_boot
from kumo.work import hooks
from kumo.work.kinds import TaskKind
from kumo.work.models import Task


def begin(
    session: Session,
    ctx: RequestContext,
    instance: Instance,
    kind: str,
    extra: dict[str, Any] | None = None,
) -> str:
    """Start action `kind` on `instance` (its task on the instance's host, its payload the
    action's plus `extra`); returns the host to wake."""
    change = lc.request(state_of(instance), kind, is_admin=ctx.is_admin, extra=extra)
    return woken(apply(session, instance, change, ctx).wake)


def woken(host: str | None) -> str:
    """The host a requested action wakes (lifecycle.request always names one)."""
    if host is None:
        raise ValueError("a requested action names the host to wake")
    return host


def start(session: Session, ctx: RequestContext, server_id: str) -> str:
    ctx.require_writer()
    return begin(session, ctx, servers.get(session, ctx, server_id), "start")


def stop(session: Session, ctx: RequestContext, server_id: str) -> str:
    ctx.require_writer()
    return begin(session, ctx, servers.get(session, ctx, server_id), "stop")


def reboot(session: Session, ctx: RequestContext, server_id: str, reboot_type: str) -> str:
    ctx.require_writer()
    if reboot_type not in ("SOFT", "HARD"):
        raise BadRequest("Invalid input for field/attribute type. Value must be SOFT or HARD.")
    kind = "reboot_hard" if reboot_type == "HARD" else "reboot"
    return begin(session, ctx, servers.get(session, ctx, server_id), kind)


def rebuild(
    session: Session, ctx: RequestContext, server_id: str, body: dict[str, Any]
) -> tuple[Instance, str]:
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id)
    image_ref = body.get("imageRef")
    if not isinstance(image_ref, str):
        raise BadRequest("Invalid input for field/attribute imageRef.")
    image = get_image_for_boot(session, ctx, image_ref)
    # Like Nova, a server rebuilt while stopped is stopped again afterwards (lifecycle.request).
    host = begin(session, ctx, instance, "rebuild", {"image_ref": image.id})
    instance.image_ref = image.id
    if "name" in body:
        instance.name = str(body["name"])
    if "metadata" in body:
        metadata = servers.validate_metadata(body["metadata"])
        quotas.check_metadata_items(session, instance.project_id, len(metadata))
        instance.metadata_ = metadata
    if "description" in body:
        instance.description = body["description"]
    if "key_name" in body:  # 2.54
        key = keypairs.get_keypair_for_boot(session, ctx, body["key_name"]) if body["key_name"] else None
        instance.key_name = key.name if key else None
        instance.key_data = key.public_key if key else None
    if "hostname" in body:  # 2.90, checked by the route
        instance.hostname = body["hostname"]
    if "user_data" in body:  # 2.57
        instance.user_data = servers.user_data_of(body["user_data"])
    return instance, host


@dataclass(frozen=True)
class Boot:
    """A server's first boot, seen by `settle`: counted (`record_boots`) only once the
    transaction that settled it has committed, so a batch applied again is not counted twice."""

    seconds: float
    kind: str  # "hypervisor" | "baremetal"


def settle(session: Session, task: Task, ok: bool, result: dict[str, Any]) -> Boot | None:
    """Apply an agent's report. Idempotent: a task that is no longer pending is left alone.
    Returns the server's first boot when this report ended it (for the caller to record after
    its commit), else None."""
    if task.state != "pending":
        if task.state == "failed" and task.result is None:  # failed without a result, then it came
            task.result = {"late": True}  # heard once (a resent report is not heard again)
            hooks.late(session, task, result)
        return None
    task.state = "done" if ok else "failed"
    task.result = result
    task.error = lc.task_error(ok, result)
    # A baremetal node moves with its conductor's report (deploying → active…), before the
    # instance: the registered hooks run first (kumo.work.hooks), and may rewrite `result`.
    hooks.settled(session, task, ok, result)
    instance = session.query(Instance).filter(Instance.uuid == task.instance_uuid).one_or_none()
    first_boot = instance is not None and task.kind == TaskKind.SPAWN and instance.launched_at is None
    outcome = lc.TaskOutcome.of(task.kind, task.host, ok, task.payload, result)
    apply_if(session, instance, lc.settled(state_or_none(instance), outcome), Requester(task.request_id))
    if not (first_boot and instance is not None and instance.launched_at is not None):
        return None
    booted = (instance.launched_at - instance.created_at).total_seconds()
    host_type = session.scalar(select(ComputeHost.hypervisor_type).where(ComputeHost.name == task.host))
    kind = "baremetal" if host_type == BAREMETAL_HYPERVISOR_TYPE else "hypervisor"
    return Boot(max(0.0, booted), kind)


def record_boots(boots: Iterable[Boot | None]) -> None:
    """Count committed first boots in kumo_server_boot_seconds (by kind)."""
    for boot in boots:
        if boot is not None:
            metrics.SERVER_BOOT_SECONDS.labels(kind=boot.kind).observe(boot.seconds)


def fail_unsettled(session: Session, task_id: str, error: str) -> None:
    """An agent's result for the task raised while being applied (settle), for a reason of its
    own: the task fails with `error` instead, its event finishes with it, and its server (if it
    has one) goes to ERROR with a fault naming it, rather than waiting in a task state that no
    result will end (a clean-up ends nothing, as in settle: a destination's after a failed move,
    a dead host's after a local delete or an evacuation, whose server may now live elsewhere;
    its server is left alone). Idempotent as settle: a task no longer pending is left alone."""
    task = session.get(Task, task_id, with_for_update=True)
    if task is None or task.state != "pending":
        return
    task.state, task.error, task.result = "failed", error, {"error": error}
    event_id = task.payload.get("event_id") if isinstance(task.payload, dict) else None
    instance = session.query(Instance).filter(Instance.uuid == task.instance_uuid).one_or_none()
    change = lc.unsettled(state_or_none(instance), task.kind, event_id, error)
    apply_if(session, instance, change, Requester(task.request_id))


def reset_state(session: Session, ctx: RequestContext, server_id: str, state: object) -> None:
    """Admin: os-resetState. Sets vm_state (active or error) and clears task_state; a task still
    pending for the instance stays, and settles as any late report does."""
    ctx.require_admin()
    requested = lc.reset_target(state)
    instance = servers.get(session, ctx, server_id, for_update=True)
    apply(session, instance, lc.reset_state(state_of(instance), requested), ctx)


def set_locked(
    session: Session, ctx: RequestContext, server_id: str, locked: bool, reason: str | None = None
) -> None:
    """Lock (with 2.73's reason, kept until unlocked) or unlock."""
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id)
    instance.locked = locked
    instance.locked_reason = reason if locked else None
    actions.record(
        session,
        instance.uuid,
        "lock" if locked else "unlock",
        "api_lock" if locked else "api_unlock",
        ctx.request_id,
        ctx.user_id,
        ctx.project_id,
    )


def restore(session: Session, ctx: RequestContext, server_id: str) -> None:
    """os-deferred-delete's restore. kumo deletes a server at once (Nova with
    reclaim_instance_interval 0), so no server is ever soft-deleted and restore is refused as
    Nova refuses it for a server in any other vm_state: 409 from the state table."""
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id)
    states.check("restore", instance.vm_state, instance.task_state, instance.uuid)
    raise InvalidState(
        f"Instance {instance.uuid} is in vm_state {instance.vm_state}, which kumo never restores."
    )
