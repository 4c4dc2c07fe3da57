"""Server actions (start, stop, reboot, rebuild, reset, lock) and settling agents' results;
the moves (migrate, resize confirm / revert) start in kumo.compute.moves.

Each action: check the state machine, record the action and its event, set task_state, enqueue a
task for the host's agent — all in the caller's transaction. The caller wakes the agent after
commit with the host name returned.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import actions, keypairs, servers, states
from kumo.compute.aggregates import availability_zone_of
from kumo.compute.models import Instance
from kumo.compute.servers import migration_consumer
from kumo.compute.states import PowerState, VmState
from kumo.db import utcnow
from kumo.errors import BadRequest, Conflict
from kumo.image.service import get_image_for_boot
from kumo.placement.claims import release, rename_consumer
from kumo.work import hooks, queue
from kumo.work.kinds import (
    AbortMigrationPayload,
    ActionPayload,
    AnyPayload,
    MovePayload,
    PrepareMigrationPayload,
    RebootPayload,
    RebuildPayload,
    ServerSpec,
    TaskKind,
)
from kumo.work.models import Task

# Builds an action's task payload from its action id, event id and server spec.
PayloadOf = Callable[[int, int, ServerSpec], AnyPayload]


def begin(
    session: Session,
    ctx: RequestContext,
    instance: Instance,
    kind: str,
    payload_of: PayloadOf = ActionPayload,
    host: str | None = None,
    task_kind: TaskKind | None = None,
) -> str:
    """Start action `kind` on `instance`: its task goes to `host` (default: the instance's) as
    `task_kind` (default: the kind named `kind`), with the payload `payload_of` builds."""
    if instance.locked and not ctx.is_admin:
        raise Conflict(f"Instance {instance.uuid} is locked")
    action = states.check(kind, instance.vm_state, instance.task_state, instance.uuid)
    target = host or instance.host
    if target is None:
        raise Conflict(f"Instance {instance.uuid} has no host yet")
    row = actions.start_action(
        session, instance.uuid, action.name, ctx.request_id, ctx.user_id, ctx.project_id
    )
    ev = actions.start_event(session, row.id, action.event, target)
    instance.task_state = action.task_state
    payload = payload_of(row.id, ev.id, servers.spec(instance))
    queue.enqueue(session, target, task_kind or TaskKind(kind), instance.uuid, payload, ctx.request_id)
    return target


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
    payload_of = partial(RebootPayload, hard=reboot_type == "HARD")
    return begin(session, ctx, servers.get(session, ctx, server_id), kind, payload_of)


def rebuild(
    session: Session, ctx: RequestContext, server_id: str, body: dict[str, Any]
) -> tuple[Instance, str]:
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id)
    image_ref = body.get("imageRef")
    if not isinstance(image_ref, str):
        raise BadRequest("Invalid input for field/attribute imageRef.")
    image = get_image_for_boot(session, ctx, image_ref)
    # Like Nova, a server rebuilt while stopped is stopped again afterwards (see _apply).
    stop_after = instance.vm_state == VmState.STOPPED
    payload_of = partial(RebuildPayload, image_ref=image.id, stop_after=stop_after)
    host = begin(session, ctx, instance, "rebuild", payload_of)
    instance.image_ref = image.id
    if "name" in body:
        instance.name = str(body["name"])
    if "metadata" in body:
        instance.metadata_ = servers.validate_metadata(body["metadata"])
    if "description" in body:
        instance.description = body["description"]
    if "key_name" in body:  # 2.54
        key = keypairs.get_keypair_for_boot(session, ctx, body["key_name"]) if body["key_name"] else None
        instance.key_name = key.name if key else None
        instance.key_data = key.public_key if key else None
    if "user_data" in body:  # 2.57
        instance.user_data = servers.user_data_of(body["user_data"])
    return instance, host


def settle(session: Session, task: Task, ok: bool, result: dict[str, Any]) -> None:
    """Apply an agent's report. Idempotent: a task that is no longer pending is left alone."""
    if task.state != "pending":
        return
    task.state = "done" if ok else "failed"
    task.result = result
    task.error = None if ok else str(result.get("error", "unknown error"))
    # A baremetal node moves with its conductor's report (deploying → active…), before the
    # instance: the registered hooks run first (kumo.work.hooks).
    hooks.settled(session, task, ok, result)
    instance = session.query(Instance).filter(Instance.uuid == task.instance_uuid).one_or_none()
    if task.kind in ("abort_migration", "cleanup"):  # clean-up on a host: nothing to change
        return
    if task.kind == "prepare_migration":
        _settle_prepare(session, task, instance, ok, result)
        return
    event_id = task.payload.get("event_id")
    if event_id is not None:
        # As in Nova, an admin reads why an event failed in its traceback (the driver's message
        # when there is no Python traceback: a DriverError is an expected failure).
        trace = None if ok else (result.get("traceback") or task.error)
        actions.finish_event(session, int(event_id), ok, None if ok else task.error, trace)
    if instance is None or instance.deleted:
        return
    _apply(session, task, instance, ok, result)


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
    if isinstance(event_id, int):
        actions.finish_event(session, event_id, False, error, error)
    if task.kind in ("abort_migration", "cleanup"):
        return
    instance = session.query(Instance).filter(Instance.uuid == task.instance_uuid).one_or_none()
    if instance is not None and not instance.deleted:
        mark_error(instance, error, 500)


def _apply(session: Session, task: Task, instance: Instance, ok: bool, result: dict[str, Any]) -> None:

    action = states.ACTIONS[task.kind]
    power = result.get("power_state")
    if task.kind == "delete":
        if ok:
            servers.finalize_delete(session, instance)
        else:
            instance.task_state = None
            instance.vm_state = VmState.ERROR
            instance.fault = _fault(task.error or "delete failed", 500)
        return
    if task.kind in ("live_migrate", "migrate", "revert_resize"):
        _settle_move(session, task, instance, ok, power)
        return
    instance.task_state = None
    if ok:
        if action.done_vm_state is not None:
            instance.vm_state = action.done_vm_state
        instance.power_state = int(
            power if power is not None else (action.done_power or instance.power_state)
        )
        if task.kind == "spawn":
            instance.launched_at = utcnow()
            instance.progress = 100
        if task.kind in ("rebuild", "evacuate") and task.payload.get("stop_after"):
            _power_off_after_rebuild(session, task, instance)
    elif task.kind in ("spawn", "evacuate"):
        instance.vm_state = VmState.ERROR
        failed = "Build of instance failed" if task.kind == "spawn" else "Evacuation of instance failed"
        instance.fault = _fault(task.error or failed, 500)
    else:
        # Nova leaves the instance in its previous state with the event recording the error.
        if power is not None:
            instance.power_state = int(power)


def _power_off_after_rebuild(session: Session, task: Task, instance: Instance) -> None:
    """The guest comes back running; stop it, within the rebuild action (the status stays ACTIVE
    with task_state powering-off until the agent reports, as in Nova)."""
    instance.task_state = states.TaskState.POWERING_OFF
    payload = ActionPayload(task.payload.get("action_id"), None, servers.spec(instance))
    queue.enqueue(session, task.host, TaskKind.STOP, instance.uuid, payload, task.request_id)


def _settle_prepare(
    session: Session, task: Task, instance: Instance | None, ok: bool, result: dict[str, Any]
) -> None:
    """The destination is ready (or not): hand the move to the source, or end the action."""
    payload = task.payload
    kind, dest, source = payload["move"], payload["dest"], payload["source"]
    if instance is None or instance.deleted:
        return
    if ok and instance.host == source:
        prepared = PrepareMigrationPayload.from_json(payload)
        move = MovePayload.after(prepared, servers.spec(instance), result.get("target"))
        queue.enqueue(session, source, prepared.move, instance.uuid, move, task.request_id)
        return
    error = task.error if not ok else f"Instance {instance.uuid} left {source} before the move began"
    why = f"Preparing {dest} failed: {error}"
    actions.finish_event(session, int(payload["event_id"]), False, why, why)
    instance.task_state = None
    if kind != "revert_resize":
        _undo_destination_claim(session, instance)
    _abort_on(session, task.request_id, instance, dest)


def _abort_on(session: Session, request_id: str | None, instance: Instance, dest: str) -> None:
    """Have the destination drop whatever it prepared for a move that did not happen."""
    payload = AbortMigrationPayload(servers.spec(instance), dest)
    queue.enqueue(session, dest, TaskKind.ABORT_MIGRATION, instance.uuid, payload, request_id)


def _settle_move(session: Session, task: Task, instance: Instance, ok: bool, power: int | None) -> None:
    instance.task_state = None
    if power is not None:
        instance.power_state = int(power)
    if not ok:
        # A failed move leaves the guest where it was: give back the destination's claim, and
        # have the destination clean up what it prepared.
        if task.kind != "revert_resize":
            _undo_destination_claim(session, instance)
        _abort_on(session, task.request_id, instance, task.payload["dest"])
        return
    dest, source = task.payload["dest"], task.payload["source"]
    instance.host = dest
    instance.availability_zone = availability_zone_of(session, dest)
    if task.kind == "live_migrate":
        release(session, migration_consumer(instance.uuid))
    elif task.kind == "migrate":
        instance.vm_state = VmState.RESIZED
        instance.migration_source = source
    else:  # revert_resize: back on the source, holding the source's original claim again
        _undo_destination_claim(session, instance)
        instance.vm_state = VmState.STOPPED if instance.power_state == PowerState.SHUTDOWN else VmState.ACTIVE
        instance.migration_source = None


def _undo_destination_claim(session: Session, instance: Instance) -> None:
    release(session, instance.uuid)
    rename_consumer(session, migration_consumer(instance.uuid), instance.uuid)


def _fault(message: str, code: int) -> dict[str, Any]:
    return {"code": code, "message": message[:255], "details": message, "created": utcnow().isoformat()}


def mark_error(instance: Instance, message: str, code: int = 500) -> None:
    instance.vm_state = VmState.ERROR
    instance.task_state = None
    instance.fault = _fault(message, code)


def sync_power_state(instance: Instance, power: int) -> None:
    """The agent saw the guest in `power`; reconcile when no task is in flight (Nova's
    _sync_power_states: a guest that stopped by itself becomes SHUTOFF)."""
    if instance.task_state is not None or instance.deleted:
        return
    instance.power_state = power
    if instance.vm_state == VmState.ACTIVE and power in (PowerState.SHUTDOWN, PowerState.CRASHED):
        instance.vm_state = VmState.STOPPED
    elif instance.vm_state == VmState.STOPPED and power == PowerState.RUNNING:
        instance.vm_state = VmState.ACTIVE


RESET_STATES = {"active": VmState.ACTIVE, "error": VmState.ERROR}


def reset_state(session: Session, ctx: RequestContext, server_id: str, state: object) -> None:
    """Admin: os-resetState. Sets vm_state (active or error) and clears task_state; a task still
    pending for the instance stays, and settles as any late report does."""
    ctx.require_admin()
    if not isinstance(state, str) or state not in RESET_STATES:
        raise BadRequest(
            f"Invalid input for field/attribute state. Value: {state}. "
            f"{state!r} is not one of {sorted(RESET_STATES)}"
        )
    instance = servers.get(session, ctx, server_id, for_update=True)
    action = states.check("reset_state", instance.vm_state, instance.task_state, instance.uuid)
    instance.vm_state = RESET_STATES[state]
    instance.task_state = None
    actions.record(
        session,
        instance.uuid,
        action.name,
        action.event,
        ctx.request_id,
        ctx.user_id,
        ctx.project_id,
        details=f"state reset to {state}",
        host=instance.host,
    )


def set_locked(session: Session, ctx: RequestContext, server_id: str, locked: bool) -> None:
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id)
    instance.locked = locked
    actions.record(
        session,
        instance.uuid,
        "lock" if locked else "unlock",
        "api_lock" if locked else "api_unlock",
        ctx.request_id,
        ctx.user_id,
        ctx.project_id,
    )
