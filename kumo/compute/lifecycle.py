"""The server lifecycle as pure functions: (server state, event) -> Change.

Every transition a server makes is decided here and nowhere else: an action requested through
the API, a placement by the scheduler (or its failure), an agent's task result, a power state
observed, an administrator's reset, a local delete, an evacuation. A function reads a frozen
`ServerState` and the event's data, and returns a `Change`: the new vm_state, task_state and
power_state, the fault, and the follow-up work as data (`Enqueue`, `Release`, `RenameConsumer`,
`BindPorts` to the host it lands on, `ReleasePorts` when it is gone, action records...).
Refused transitions raise `kumo.errors.InvalidState` (409) with Nova's messages, or `Conflict`
for a lock or a missing host.

Invariants:
- This module reads no database, no clock and no settings; it imports only the standard
  library, kumo.errors, kumo.compute.states and kumo.work.kinds (task kinds, pure data).
  kumo.compute.lifecycle_apply writes a Change.
- Task kinds are `TaskKind` members; an `Enqueue` carries its payload's fields, from which the
  applier builds the kind's typed payload (kumo.work.kinds.PAYLOADS) once Refs are filled in.
- A Change's fields left `UNCHANGED` are not written; `None` is a value (no task in flight, no
  host, no migration source).
- `effects` run in their order, after the fields are written; `Ref` placeholders in an effect
  stand for what only the applier knows (the action and event it started, the agent's spec of
  the instance), and are replaced by it.
- Authorization (writer, admin) stays with the callers; the lock is a state rule and is here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Protocol

from kumo.compute.states import ACTIONS, SCHEDULE_EVENT, Action, PowerState, TaskState, VmState, check
from kumo.errors import BadRequest, Conflict, InvalidState
from kumo.work.kinds import HOST_CLEANUPS, IMAGINGS, INTERFACE_CHANGES, MOVES, TaskKind

SPAWN_EVENT = ACTIONS["spawn"].event  # the agent's part of the create action
# task_states of a move in flight: its destination may hold what prepare_migration left there.
MOVING = frozenset(
    {TaskState.MIGRATING, TaskState.RESIZE_MIGRATING, TaskState.RESIZE_REVERTING, TaskState.RESIZE_PREP}
)
# os-resetState's accepted values -> the vm_state each sets.
RESET_STATES = {"active": VmState.ACTIVE, "error": VmState.ERROR}
# A move's migration record: its type (Nova's migration_type) and its status as it starts,
# once its destination is prepared, and once it succeeded.
MIGRATION_TYPES = {
    TaskKind.LIVE_MIGRATE: "live-migration",
    TaskKind.MIGRATE: "migration",
    TaskKind.RESIZE: "resize",
}
MIGRATION_STATUSES = {
    TaskKind.LIVE_MIGRATE: ("preparing", "running", "completed"),
    TaskKind.MIGRATE: ("pre-migrating", "migrating", "finished"),
    TaskKind.RESIZE: ("pre-migrating", "migrating", "finished"),
    TaskKind.REVERT_RESIZE: ("reverting", "reverting", "reverted"),
}


def _migration_status(kind: TaskKind, phase: int) -> str:
    """A move's migration status at `phase` (0 started, 1 prepared, 2 done)."""
    return MIGRATION_STATUSES.get(kind, ("pre-migrating", "migrating", "finished"))[phase]


def migration_consumer(instance_uuid: str) -> str:
    """The consumer id that owns a server's allocations on the source host during a move."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"migration:{instance_uuid}"))


@dataclass(frozen=True)
class ServerState:
    """What a transition reads of a server."""

    uuid: str
    vm_state: str
    task_state: str | None
    power_state: int = int(PowerState.NOSTATE)
    host: str | None = None
    migration_source: str | None = None
    locked: bool = False
    deleted: bool = False
    shelved_image: str | None = None  # the shelve snapshot, while shelved (or unshelving)


class Unchanged(Enum):
    UNCHANGED = "unchanged"


UNCHANGED = Unchanged.UNCHANGED


class Ref(Enum):
    """A value only the applier knows, used inside effects."""

    ACTION = "action"  # the id of the action this change started
    EVENT = "event"  # the id of the event this change started last (None if none)
    SPEC = "spec"  # the agent's view of the instance (lifecycle_apply.spec)
    # ... with the flavor it had before its resize (its own when none is kept): a revert's
    # tasks rebuild the guest so while the server keeps its new flavor until the revert is done
    REVERTED_SPEC = "reverted_spec"


@dataclass(frozen=True)
class Fault:
    message: str
    code: int = 500


@dataclass(frozen=True)
class BeginAction:
    """Start an instance action (and its first event on `host`, when `event` is given)."""

    name: str
    event: str | None = None
    host: str | None = None


@dataclass(frozen=True)
class StartEvent:
    """Start an event of `action_id` (Ref.ACTION: the action this change started)."""

    event: str
    host: str | None
    action_id: int | Ref = Ref.ACTION


@dataclass(frozen=True)
class FinishEvent:
    event_id: int | Ref
    ok: bool
    details: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class RecordAction:
    """An action whose only event happened at once (actions.record)."""

    name: str
    event: str
    host: str | None
    details: str | None = None


@dataclass(frozen=True)
class Enqueue:
    """A task for `host`'s agent about this server: `payload` holds the fields of `kind`'s
    typed payload (kumo.work.kinds.PAYLOADS), Ref values among them filled in by the applier."""

    host: str
    kind: TaskKind
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Release:
    consumer: str


@dataclass(frozen=True)
class RenameConsumer:
    old: str
    new: str


@dataclass(frozen=True)
class CancelTasks:
    """Cancel the server's pending tasks (before any task this change enqueues); the image a
    cancelled snapshot or shelve was uploading goes with it (abandoned_image)."""


@dataclass(frozen=True)
class LeaveGroups:
    """Drop the server's server-group memberships."""


@dataclass(frozen=True)
class BindPorts:
    """Bind the server's ports to `host` (before any task this change enqueues, whose spec
    carries them bound). On a first placement (`first_placement`) no host's firewall is synced:
    the spawn's agent applies the ports' rules before it builds the guest, and the ports'
    addresses were synced to the hosts naming their groups when the ports were made."""

    host: str
    first_placement: bool = False


@dataclass(frozen=True)
class ReleasePorts:
    """The server is gone: the ports made for it go, the ports it was given are unbound."""


@dataclass(frozen=True)
class ReleasePort:
    """One of the server's ports leaves it (an interface detached, or one whose attach
    failed): made for it, it goes; given to it, it is unbound."""

    port_id: str


@dataclass(frozen=True)
class RevertFlavor:
    """The server's flavor becomes the one it had before a resize (none kept: nothing to do)."""


@dataclass(frozen=True)
class ForgetOldFlavor:
    """A resize is confirmed: the flavor it came from is no longer kept."""


@dataclass(frozen=True)
class DropImage:
    """An image made for the server is no longer wanted: a snapshot whose upload failed, or a
    shelve snapshot once unshelved. `unless_active`: an upload that finished keeps its image
    (a server deleted while its snapshot's report was on its way: Nova deletes the image only
    when it is not active yet)."""

    image_id: str
    unless_active: bool = False


@dataclass(frozen=True)
class RotateBackups:
    """A backup of the server is uploaded: of its backups of `backup_type`, only the newest
    `keep` stay (Nova's _rotate_backups; the new one counts). Nova lists and deletes them with
    the requester's context: only images of the server's project the requester (project
    `project_id`, an admin or not) may delete are counted and deleted."""

    backup_type: str
    keep: int
    project_id: str | None
    is_admin: bool


@dataclass(frozen=True)
class BeginMigration:
    """A move starts: a migration record of `migration_type` from `source` to `dest`."""

    migration_type: str
    source: str | None
    dest: str
    status: str


@dataclass(frozen=True)
class MigrationStatus:
    """The server's latest migration record reaches `status`."""

    status: str


Effect = (
    BeginAction
    | StartEvent
    | FinishEvent
    | RecordAction
    | Enqueue
    | Release
    | RenameConsumer
    | CancelTasks
    | LeaveGroups
    | BindPorts
    | ReleasePorts
    | ReleasePort
    | RevertFlavor
    | ForgetOldFlavor
    | DropImage
    | RotateBackups
    | BeginMigration
    | MigrationStatus
)


@dataclass(frozen=True)
class Change:
    """What a transition does. `zone_from_host`: the availability zone becomes the new host's.
    `launched`: launched_at becomes now. `resized`: resized_at becomes now. `deleted`: the row
    is soft-deleted (terminated now). `wake`: the host whose agent to wake after commit."""

    vm_state: str | Unchanged = UNCHANGED
    task_state: str | None | Unchanged = UNCHANGED
    power_state: int | Unchanged = UNCHANGED
    host: str | None | Unchanged = UNCHANGED
    availability_zone: str | None | Unchanged = UNCHANGED
    zone_from_host: bool = False
    migration_source: str | None | Unchanged = UNCHANGED
    fault: Fault | None = None
    launched: bool = False
    resized: bool = False
    progress: int | None = None
    deleted: bool = False
    effects: tuple[Effect, ...] = field(default=())
    wake: str | None = None
    # the shelve snapshot the server keeps (None: none any more); shelved_at is set with it
    shelved_image: str | None | Unchanged = UNCHANGED

    def then(self, *effects: Effect) -> Change:
        return replace(self, effects=self.effects + effects)


NOTHING = Change()


def _undo_destination_claim(state: ServerState) -> tuple[Effect, ...]:
    """The destination's claim goes; the source's allocations are the server's again."""
    return (Release(state.uuid), RenameConsumer(migration_consumer(state.uuid), state.uuid))


def _abort_on(dest: str) -> Enqueue:
    """Have the destination drop what it prepared for a move that did not happen."""
    return Enqueue(dest, TaskKind.ABORT_MIGRATION, {"instance": Ref.SPEC, "dest": dest})


def _cleanup_on(host: str, why: str) -> Enqueue:
    """Have `host`'s agent, whenever it runs again, destroy this server's guest there."""
    return Enqueue(host, TaskKind.CLEANUP, {"instance": Ref.SPEC, "why": why})


def _error(message: str, code: int = 500) -> Change:
    return Change(vm_state=VmState.ERROR, task_state=None, fault=Fault(message, code))


# ----------------------------------------------------------------------------- the API's


def created() -> Change:
    """A new server waits for the scheduler, its create action's scheduling event open."""
    return Change(
        vm_state=VmState.BUILDING,
        task_state=TaskState.SCHEDULING,
        effects=(BeginAction("create", SCHEDULE_EVENT),),
    )


def _check_lock(state: ServerState, is_admin: bool) -> None:
    if state.locked and not is_admin:
        raise Conflict(f"Instance {state.uuid} is locked")


def allowed(state: ServerState, kind: str) -> Action:
    """The action `kind` if the server may take it now, else InvalidState (states.check)."""
    return check(kind, state.vm_state, state.task_state, state.uuid)


def request(
    state: ServerState,
    kind: str,
    *,
    is_admin: bool,
    extra: Mapping[str, Any] | None = None,
    host: str | None = None,
    task_kind: TaskKind | None = None,
    lock_applies: bool = True,
) -> Change:
    """Start action `kind`: its task goes to `host` (default: the server's) as `task_kind`
    (default: `kind`), its payload the action, its event, the spec and `extra`. A rebuild
    carries stop_after (a server rebuilt while stopped is stopped again), a reboot `hard`.
    A locked server refuses a non-admin unless `lock_applies` is False (an action that
    changes nothing of the server)."""
    if lock_applies:
        _check_lock(state, is_admin)
    action = allowed(state, kind)
    target = host or state.host
    if target is None:
        raise Conflict(f"Instance {state.uuid} has no host yet")
    payload: dict[str, Any] = {"action_id": Ref.ACTION, "event_id": Ref.EVENT, "instance": Ref.SPEC}
    if kind in ("reboot", "reboot_hard"):
        payload["hard"] = kind == "reboot_hard"
    if kind == "rebuild":
        payload["stop_after"] = state.vm_state == VmState.STOPPED
    payload.update(extra or {})
    return Change(
        task_state=action.task_state,
        effects=(
            BeginAction(action.name, action.event, target),
            Enqueue(target, task_kind or TaskKind(kind), payload),
        ),
        wake=target,
    )


def request_move(state: ServerState, kind: str, dest: str, *, is_admin: bool) -> Change:
    """A move is two tasks: the destination prepares (`prepare_migration`), then, when it
    answers, the source moves the guest there (`kind`; see prepared). The action's event stays
    open across both and finishes with the move's outcome."""
    move_kind = TaskKind(kind)
    move = {"dest": dest, "source": state.host, "move": move_kind}
    if dest == state.host:
        # A resize (or its revert) on the server's own host: nothing to prepare elsewhere; the
        # host itself redefines the guest (the move's task with no target).
        change = request(state, kind, is_admin=is_admin, extra={**move, "target": None})
    else:
        change = request(
            state, kind, is_admin=is_admin, extra=move, host=dest, task_kind=TaskKind.PREPARE_MIGRATION
        )
    starting = _migration_status(move_kind, 0)
    if move_kind in MIGRATION_TYPES:
        return change.then(BeginMigration(MIGRATION_TYPES[move_kind], state.host, dest, starting))
    return change.then(MigrationStatus(starting))


def request_resize(state: ServerState, dest: str, *, is_admin: bool) -> Change:
    """A cold migration to the flavor the caller already set on the server (its old one kept):
    to `dest`, claimed by the caller, which may be the server's own host."""
    return request_move(state, "resize", dest, is_admin=is_admin)


def change_interface(
    state: ServerState, kind: TaskKind, port: Mapping[str, Any], *, is_admin: bool
) -> Change:
    """os-interface: plug (attach_interface) or unplug (detach_interface) `port` (a spec port,
    already bound to the server's host for an attach) on the server's host. The server's
    states stay as they are (Nova sets no task_state); the action's event finishes with the
    agent's report (see _interface_changed)."""
    if kind not in INTERFACE_CHANGES:
        raise ValueError(f"{kind} is no interface change")
    _check_lock(state, is_admin)
    action = allowed(state, str(kind))
    if state.host is None:
        raise Conflict(f"Instance {state.uuid} has no host yet")
    payload = {"action_id": Ref.ACTION, "event_id": Ref.EVENT, "instance": Ref.SPEC, "port": dict(port)}
    return Change(
        effects=(BeginAction(action.name, action.event, state.host), Enqueue(state.host, kind, payload)),
        wake=state.host,
    )


def revert_resize(state: ServerState, *, is_admin: bool) -> Change:
    """Move back to the source a resize came from."""
    source = state.migration_source
    if state.vm_state != VmState.RESIZED or not source:
        raise InvalidState(
            f"Cannot 'revertResize' instance {state.uuid} while it is in vm_state {state.vm_state}"
        )
    change = request_move(state, "revert_resize", source, is_admin=is_admin)
    # The source gets the guest back as it was: the spec its task carries has the old flavor,
    # while the server keeps the new one (and the old one kept) until the revert is done, as
    # Nova swaps them only in finish_revert_resize: a failed revert leaves them as they were.
    return replace(change, effects=tuple(_with_reverted_spec(effect) for effect in change.effects))


def _with_reverted_spec(effect: Effect) -> Effect:
    if isinstance(effect, Enqueue) and effect.payload.get("instance") is Ref.SPEC:
        return replace(effect, payload={**effect.payload, "instance": Ref.REVERTED_SPEC})
    return effect


def confirm_resize(state: ServerState) -> Change:
    """The source's share goes; the server stays where it was resized to."""
    if state.vm_state != VmState.RESIZED:
        raise InvalidState(
            f"Cannot 'confirmResize' instance {state.uuid} while it is in vm_state {state.vm_state}"
        )
    running = state.power_state == PowerState.RUNNING
    return Change(
        vm_state=VmState.ACTIVE if running else VmState.STOPPED,
        migration_source=None,
        effects=(
            Release(migration_consumer(state.uuid)),
            ForgetOldFlavor(),
            RecordAction("confirmResize", "compute_confirm_resize", state.host),
            MigrationStatus("confirmed"),
        ),
    )


def reset_target(value: object) -> str:
    """The state an os-resetState body asks for ("active" or "error"), or BadRequest. Read
    before the server is looked up."""
    if not isinstance(value, str) or value not in RESET_STATES:
        raise BadRequest(
            f"Invalid input for field/attribute state. Value: {value}. "
            f"{value!r} is not one of {sorted(RESET_STATES)}"
        )
    return value


def reset_state(state: ServerState, requested: str) -> Change:
    """Admin: set the vm_state `requested` (from reset_target) names and clear task_state; a
    task still pending stays, and settles as any late report does.

    A server in ERROR that still holds a move's source share (a failed resize revert: its
    migration consumer on the source, its old flavor kept) and is reset to active is declared
    fine where it is, with the flavor it has: the source's share is released and the old
    flavor forgotten (as a confirm would), so nothing stays held that no action can free.
    Nova's reset only sets the state and leaves that allocation to its migration record,
    which no later action of that server releases (a leak until the server is deleted);
    reset to error keeps it (deleting the server releases it)."""
    action = allowed(state, "reset_state")
    recorded = RecordAction(action.name, action.event, state.host, f"state reset to {requested}")
    change = Change(vm_state=RESET_STATES[requested], task_state=None, effects=(recorded,))
    if state.vm_state == VmState.ERROR and state.migration_source and requested == "active":
        return replace(
            change,
            migration_source=None,
            effects=(recorded, Release(migration_consumer(state.uuid)), ForgetOldFlavor()),
        )
    return change


def _finalized(state: ServerState) -> Change:
    """Deleted: no allocation (nor a move's source share), no group, DELETED."""
    dropped = (DropImage(state.shelved_image),) if state.shelved_image else ()
    return Change(
        vm_state=VmState.DELETED,
        task_state=None,
        power_state=int(PowerState.NOSTATE),
        deleted=True,
        effects=(
            Release(state.uuid),
            Release(migration_consumer(state.uuid)),
            LeaveGroups(),
            ReleasePorts(),
            *dropped,
        ),
    )


def delete(
    state: ServerState,
    *,
    is_admin: bool,
    force: bool = False,
    host_down: bool = False,
    move_destination: str | None = None,
) -> Change:
    """Start deleting (`force`: forceDelete, even while a delete is in flight). With no host,
    or `host_down` (Nova's rule, decided by the caller), the API deletes the server itself: a
    local delete, leaving the host a clean-up task and the destination of a move in flight
    (`move_destination`, read by the caller when `moving(state)`) an abort."""
    _check_lock(state, is_admin)
    local = host_down or state.host is None
    kind = "local_delete" if local else "force_delete" if force else "delete"
    action = allowed(state, kind)
    begun: tuple[Effect, ...] = (
        BeginAction(action.name),
        CancelTasks(),
        StartEvent(action.event, state.host),
    )
    if local:
        return _local_delete(state, begun, move_destination)
    payload = {"action_id": Ref.ACTION, "event_id": Ref.EVENT, "instance": Ref.SPEC}
    assert state.host is not None
    return Change(
        task_state=TaskState.DELETING,
        effects=(*begun, Enqueue(state.host, TaskKind.DELETE, payload)),
        wake=state.host,
    )


def moving(state: ServerState) -> bool:
    """Whether a move is in flight (its destination may need an abort on a local delete)."""
    return state.task_state in MOVING


def _local_delete(state: ServerState, begun: tuple[Effect, ...], dest: str | None) -> Change:
    host = state.host
    effects = list(begun)
    if host is not None:
        effects.append(_cleanup_on(host, "deleted while its host was down"))
    if dest is not None and dest != host and moving(state):
        effects.append(_abort_on(dest))
    done = _finalized(state)
    details = None if host is None else f"Host {host} is down: deleted locally"
    return replace(done, effects=(*effects, *done.effects, FinishEvent(Ref.EVENT, True, details)))


def evacuation_source(state: ServerState) -> str:
    """The host an evacuation leaves, or Conflict when the server has none."""
    if state.host is None:
        raise Conflict(f"Cannot 'evacuate' instance {state.uuid}: it has no host")
    return state.host


def evacuate(state: ServerState, dest: str, stop_after: bool = False) -> Change:
    """Rebuild on `dest` (claimed by the caller) after the source died: the source's share
    goes, its tasks are cancelled, it keeps a clean-up task, and the server moves to `dest`
    with its rebuild task (stopped afterwards if it was stopped, or when `stop_after`: Nova's
    2.95, where an evacuated server always ends SHUTOFF)."""
    source = evacuation_source(state)
    action = allowed(state, "evacuate")
    payload = {
        "action_id": Ref.ACTION,
        "event_id": Ref.EVENT,
        "source": source,
        "stop_after": stop_after or state.vm_state == VmState.STOPPED,
        "instance": Ref.SPEC,
    }
    return Change(
        host=dest,
        zone_from_host=True,
        task_state=action.task_state,
        effects=(
            Release(migration_consumer(state.uuid)),
            CancelTasks(),
            BeginAction(action.name, action.event, dest),
            BeginMigration("evacuation", source, dest, "accepted"),
            _cleanup_on(source, f"evacuated to {dest}"),
            BindPorts(dest),
            Enqueue(dest, TaskKind.EVACUATE, payload),
        ),
        wake=dest,
    )


# ------------------------------------------------------------- snapshot, shelve, unshelve


# Nova's snapshot() and backup() do not check the instance lock: it is meant to prevent
# accidental change or delete of the server, and an image of it changes neither.


def snapshot(state: ServerState, image_id: str, *, is_admin: bool) -> Change:
    """createImage: the host's agent uploads the guest's root disk as `image_id`'s data (made
    queued by the caller); the server keeps its states, with task_state image_snapshot. A
    locked server too (see above)."""
    return request(state, "snapshot", is_admin=is_admin, extra={"image_id": image_id}, lock_applies=False)


def backup(
    state: ServerState,
    image_id: str,
    backup_type: str,
    rotation: int,
    *,
    project_id: str | None,
    is_admin: bool,
) -> Change:
    """createBackup: a snapshot task (the same upload as createImage) under the createBackup
    action, task_state image_backup; its report rotates the server's backups of the type, as
    the requester (`project_id`, `is_admin`) may."""
    extra = {
        "image_id": image_id,
        "backup_type": backup_type,
        "rotation": rotation,
        "project_id": project_id,
        "is_admin": is_admin,
    }
    return request(
        state, "backup", is_admin=is_admin, extra=extra, task_kind=TaskKind.SNAPSHOT, lock_applies=False
    )


def shelve(state: ServerState, image_id: str, *, offload: bool, is_admin: bool) -> Change:
    """The host's agent powers the guest off and uploads its disk as `image_id`; `offload`
    (shelved_offload_time 0, read by the caller) destroys the guest in the same task."""
    extra = {"image_id": image_id, "offload": offload}
    return request(state, "shelve", is_admin=is_admin, extra=extra)


def shelve_offload(state: ServerState, *, is_admin: bool) -> Change:
    """A shelved server's guest is destroyed on its host; it then has no host."""
    return request(state, "shelve_offload", is_admin=is_admin)


def unshelve(state: ServerState, *, is_admin: bool) -> Change:
    """A shelved guest still on its host is powered on there; an offloaded server is pending
    scheduling again (the caller wakes the scheduler), to be spawned from its shelve snapshot."""
    _check_lock(state, is_admin)
    if state.vm_state != VmState.SHELVED_OFFLOADED:
        return request(state, "unshelve", is_admin=is_admin)
    action = allowed(state, "unshelve_offloaded")
    return Change(
        vm_state=VmState.BUILDING,
        task_state=TaskState.SCHEDULING,
        effects=(BeginAction(action.name, action.event),),
    )


def _offloaded(state: ServerState) -> Change:
    """No guest, no host, no allocations: SHELVED_OFFLOADED."""
    return Change(
        vm_state=VmState.SHELVED_OFFLOADED,
        task_state=None,
        power_state=int(PowerState.NOSTATE),
        host=None,
        effects=(Release(state.uuid),),
    )


def _imaged(state: ServerState, outcome: TaskOutcome) -> Change:
    """A snapshot, shelve, shelve offload or unshelve reported. A snapshot or shelve that
    failed drops its image and leaves the server as it was (Nova's behaviour)."""
    kind = outcome.kind
    power: int | Unchanged = UNCHANGED if outcome.power is None else int(outcome.power)
    image_id = str(outcome.payload.get("image_id") or "")
    if not outcome.ok:
        dropped = (DropImage(image_id),) if kind in (TaskKind.SNAPSHOT, TaskKind.SHELVE) and image_id else ()
        return Change(task_state=None, power_state=power, effects=dropped)
    if kind == TaskKind.SNAPSHOT:
        done = Change(task_state=None, power_state=power)
        rotation = outcome.payload.get("rotation")
        if rotation is None:
            return done
        project = outcome.payload.get("project_id")
        return done.then(
            RotateBackups(
                str(outcome.payload.get("backup_type") or ""),
                int(rotation),
                None if project is None else str(project),
                bool(outcome.payload.get("is_admin")),
            )
        )
    if kind == TaskKind.SHELVE:
        if outcome.payload.get("offload"):
            return replace(_offloaded(state), shelved_image=image_id)
        shut = int(PowerState.SHUTDOWN)
        return Change(vm_state=VmState.SHELVED, task_state=None, power_state=shut, shelved_image=image_id)
    if kind == TaskKind.SHELVE_OFFLOAD:
        return _offloaded(state)
    # unshelve on the same host: running again, the snapshot no longer needed
    running = Change(
        vm_state=VmState.ACTIVE,
        task_state=None,
        power_state=int(PowerState.RUNNING) if isinstance(power, Unchanged) else power,
        shelved_image=None,
    )
    return running.then(DropImage(state.shelved_image)) if state.shelved_image else running


# ------------------------------------------------------------------------ the scheduler's


class OpenEvent(Protocol):
    """The unfinished scheduling event of a server's create action."""

    @property
    def id(self) -> int: ...

    @property
    def action_id(self) -> int: ...


def placed(
    state: ServerState,
    host: str,
    availability_zone: str | None,
    event: OpenEvent | None,
    details: str | None = None,
    note: tuple[str, str] | None = None,
) -> Change:
    """Claimed on `host`: the scheduling event finishes (with `details`), an optional `note`
    (event name, details) is recorded on the action, the spawn event starts, and the host gets
    the spawn task."""
    if (state.vm_state, state.task_state) != (VmState.BUILDING, TaskState.SCHEDULING):
        raise InvalidState(
            f"Cannot 'create' instance {state.uuid} while it is in task_state {state.task_state}"
        )
    effects: list[Effect] = []
    if event is not None:
        effects.append(FinishEvent(event.id, True, details))
        if note is not None:
            effects += [StartEvent(note[0], host, event.action_id), FinishEvent(Ref.EVENT, True, note[1])]
        effects.append(StartEvent(SPAWN_EVENT, host, event.action_id))
    spawn_event: int | Ref | None = Ref.EVENT if event is not None else None
    effects.append(BindPorts(host, first_placement=True))
    effects.append(Enqueue(host, TaskKind.SPAWN, {"event_id": spawn_event, "instance": Ref.SPEC}))
    return Change(
        host=host,
        availability_zone=availability_zone,
        task_state=TaskState.SPAWNING,
        effects=tuple(effects),
        wake=host,
    )


def _unplaced(state: ServerState, message: str) -> Change:
    """A server the scheduler could not place: ERROR with the reason, unless it is an offloaded
    server being unshelved (it has its shelve snapshot), which stays SHELVED_OFFLOADED with no
    host and no task, as Nova leaves it (the reason is on its failed scheduling event only)."""
    if state.shelved_image:
        return Change(
            vm_state=VmState.SHELVED_OFFLOADED,
            task_state=None,
            power_state=int(PowerState.NOSTATE),
            host=None,
        )
    return _error(message, 500)


def no_valid_host(state: ServerState, message: str, event: OpenEvent | None) -> Change:
    """The scheduler found no host: _unplaced, the scheduling event failed with the reason."""
    change = _unplaced(state, message)
    return change if event is None else change.then(FinishEvent(event.id, False, message))


def scheduling_failed(state: ServerState, message: str, trace: str, event: OpenEvent | None) -> Change:
    """The server's own data made its scheduling raise: as no_valid_host, with the traceback,
    and no allocation left for it."""
    change = replace(_unplaced(state, message), effects=(Release(state.uuid),))
    return change if event is None else change.then(FinishEvent(event.id, False, message, trace))


# --------------------------------------------------------------------------- the agents'


def task_error(ok: bool, result: Mapping[str, Any]) -> str | None:
    """A task's error text as recorded on the task: None when it succeeded."""
    return None if ok else str(result.get("error", "unknown error"))


@dataclass(frozen=True)
class TaskOutcome:
    """An agent's report of a task: its kind, the host it ran on, its payload, and what the
    report says (`error` as task_error, `power` the guest's power state)."""

    kind: TaskKind
    host: str
    ok: bool
    payload: Mapping[str, Any]
    error: str | None = None
    traceback: str | None = None
    power: int | None = None
    target: Any = None  # prepare_migration's answer: where the source sends the guest

    @classmethod
    def of(
        cls, kind: str, host: str, ok: bool, payload: Mapping[str, Any], result: Mapping[str, Any]
    ) -> TaskOutcome:
        """`kind` as stored on the task (a TaskKind value)."""
        error = task_error(ok, result)
        power = result.get("power_state")
        return cls(
            kind=TaskKind(kind),
            host=host,
            ok=ok,
            payload=payload,
            error=error,
            traceback=None if ok else (result.get("traceback") or error),
            power=_power_of(power),
            target=result.get("target"),
        )


def abandoned_image(kind: str, payload: Mapping[str, Any]) -> str | None:
    """The image a cancelled task made for its upload (a snapshot's, a backup's or a shelve's),
    which no upload will finish: it goes, as Nova deletes a snapshot's image when its server is
    deleted meanwhile. None for any other task."""
    image_id = payload.get("image_id")
    if kind in (TaskKind.SNAPSHOT, TaskKind.SHELVE) and image_id:
        return str(image_id)
    return None


def settled(state: ServerState | None, outcome: TaskOutcome) -> Change:
    """Apply an agent's report of a task to its server (`state` None: no server, or deleted).
    The task's own bookkeeping (done/failed) is the caller's."""
    if outcome.kind in HOST_CLEANUPS:
        return NOTHING
    if outcome.kind == TaskKind.PREPARE_MIGRATION:
        return prepared(state, outcome)
    event_id = outcome.payload.get("event_id")
    finish: tuple[Effect, ...] = ()
    if event_id is not None:
        details = None if outcome.ok else outcome.error
        finish = (FinishEvent(int(event_id), outcome.ok, details, outcome.traceback),)
    if state is None:
        return Change(effects=finish)
    if state.deleted:  # its image, if it made one, is no longer wanted (as Nova's)
        image_id = abandoned_image(outcome.kind, outcome.payload)
        return Change(effects=(*finish, DropImage(image_id, unless_active=True)) if image_id else finish)
    change = _task_done(state, outcome)
    return replace(change, effects=finish + change.effects)


def prepared(state: ServerState | None, outcome: TaskOutcome) -> Change:
    """The destination is ready (or not): hand the move to the source, or end the action."""
    payload = outcome.payload
    kind, dest, source = TaskKind(payload["move"]), payload["dest"], payload["source"]
    if state is None or state.deleted:
        return NOTHING
    if outcome.ok and state.host == source:
        spec = Ref.REVERTED_SPEC if kind == TaskKind.REVERT_RESIZE else Ref.SPEC
        move = {**payload, "instance": spec, "target": outcome.target}
        moving_on = MigrationStatus(_migration_status(kind, 1))
        return Change(effects=(moving_on, Enqueue(source, kind, move)), wake=source)
    error = outcome.error if not outcome.ok else f"Instance {state.uuid} left {source} before the move began"
    why = f"Preparing {dest} failed: {error}"
    undo = _undo_destination_claim(state) if kind != TaskKind.REVERT_RESIZE else ()
    if kind == TaskKind.RESIZE:
        undo = (*undo, RevertFlavor())
    failed = (MigrationStatus("error"),)  # a failed revert too, as Nova
    effects = (FinishEvent(int(payload["event_id"]), False, why, why), *undo, *failed, _abort_on(dest))
    if kind == TaskKind.REVERT_RESIZE:
        return replace(_reverting_failed(why), effects=effects, wake=dest)
    return Change(task_state=None, effects=effects, wake=dest)


def _reverting_failed(error: str) -> Change:
    """A resize revert that failed leaves the server in ERROR with the fault, where it was
    resized to, its allocations as they were (Nova's _error_out_instance_on_exception around
    revert_resize and finish_revert_resize); the failed event records the error."""
    return _error(f"Reverting the resize failed: {error}", 500)


def _task_done(state: ServerState, outcome: TaskOutcome) -> Change:
    kind, power = outcome.kind, outcome.power
    if kind == TaskKind.DELETE:
        if outcome.ok:
            return _finalized(state)
        return _error(outcome.error or "delete failed", 500)
    if kind in MOVES:
        return _moved(state, outcome)
    if kind in INTERFACE_CHANGES:
        return _interface_changed(outcome)
    if kind == TaskKind.TRIGGER_CRASH_DUMP:
        return NOTHING  # an NMI changes no state; its event records the outcome
    if kind in IMAGINGS:
        return _imaged(state, outcome)
    action = ACTIONS[kind]
    if outcome.ok:
        done_power = power if power is not None else (action.done_power or state.power_state)
        change = Change(
            vm_state=action.done_vm_state if action.done_vm_state is not None else UNCHANGED,
            task_state=None,
            power_state=int(done_power),
            launched=kind == TaskKind.SPAWN,
            progress=100 if kind == TaskKind.SPAWN else None,
        )
        if kind == TaskKind.EVACUATE:
            change = change.then(MigrationStatus("done"))
        if kind == TaskKind.SPAWN and state.shelved_image:  # unshelved: the snapshot goes
            change = replace(change, shelved_image=None).then(DropImage(state.shelved_image))
        if kind in (TaskKind.REBUILD, TaskKind.EVACUATE) and outcome.payload.get("stop_after"):
            return _power_off_after_rebuild(change, outcome)
        return change
    if kind in (TaskKind.SPAWN, TaskKind.EVACUATE):
        failed = "Build of instance failed" if kind == TaskKind.SPAWN else "Evacuation of instance failed"
        error = _error(outcome.error or failed, 500)
        return error.then(MigrationStatus("failed")) if kind == TaskKind.EVACUATE else error
    # Nova leaves the server in its previous state, the event recording the error.
    return Change(task_state=None, power_state=UNCHANGED if power is None else int(power))


def _interface_changed(outcome: TaskOutcome) -> Change:
    """A NIC plugged or unplugged: the server's states are left alone (another action may have
    begun meanwhile). A detached port leaves the server only now, once the guest let it go; a
    port whose attach failed leaves it too (as Nova deallocates it)."""
    port_id = str(outcome.payload.get("port", {}).get("id", ""))
    detached = outcome.kind == TaskKind.DETACH_INTERFACE and outcome.ok
    failed_attach = outcome.kind == TaskKind.ATTACH_INTERFACE and not outcome.ok
    if port_id and (detached or failed_attach):
        return Change(effects=(ReleasePort(port_id),))
    return NOTHING


def _power_off_after_rebuild(change: Change, outcome: TaskOutcome) -> Change:
    """The guest comes back running; stop it within the rebuild action (ACTIVE with task_state
    powering-off until the agent reports, as in Nova)."""
    payload = {"action_id": outcome.payload.get("action_id"), "event_id": None, "instance": Ref.SPEC}
    return replace(
        change,
        task_state=TaskState.POWERING_OFF,
        effects=(*change.effects, Enqueue(outcome.host, TaskKind.STOP, payload)),
        wake=outcome.host,
    )


def _moved(state: ServerState, outcome: TaskOutcome) -> Change:
    power = state.power_state if outcome.power is None else int(outcome.power)
    base = Change(task_state=None, power_state=UNCHANGED if outcome.power is None else power)
    kind, dest = outcome.kind, outcome.payload["dest"]
    if not outcome.ok:
        # A failed move leaves the guest where it was: the destination's claim goes, and the
        # destination cleans up what it prepared.
        undo = _undo_destination_claim(state) if kind != TaskKind.REVERT_RESIZE else ()
        if kind == TaskKind.RESIZE:
            undo = (*undo, RevertFlavor())
        failed = (MigrationStatus("error"),)  # a failed revert too, as Nova
        if kind == TaskKind.REVERT_RESIZE:
            base = replace(_reverting_failed(outcome.error or "unknown error"), power_state=base.power_state)
        if dest == outcome.payload.get("source"):  # on its own host: nothing was prepared
            return replace(base, effects=(*undo, *failed))
        return replace(base, effects=(*undo, *failed, _abort_on(dest)), wake=dest)
    done = MigrationStatus(_migration_status(kind, 2))
    moved = replace(base, host=dest, zone_from_host=True, effects=(BindPorts(dest), done))
    if kind == TaskKind.LIVE_MIGRATE:
        return moved.then(Release(migration_consumer(state.uuid)))
    if kind in (TaskKind.MIGRATE, TaskKind.RESIZE):
        return replace(
            moved, vm_state=VmState.RESIZED, migration_source=outcome.payload["source"], resized=True
        )
    # revert_resize: back on the source with its old flavor, holding the source's original
    # claim again
    stopped = power == PowerState.SHUTDOWN
    return replace(
        moved,
        vm_state=VmState.STOPPED if stopped else VmState.ACTIVE,
        migration_source=None,
        effects=(RevertFlavor(), *moved.effects, *_undo_destination_claim(state)),
    )


def _power_of(reported: object) -> int | None:
    """A reported power state as Nova's integer; None for none, or for a value that is no
    integer (a conductor's "power on" for a node the baremetal hook did not translate)."""
    if reported is None or isinstance(reported, bool):
        return None
    try:
        return int(reported)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def unsettled(state: ServerState | None, kind: str, event_id: object, error: str) -> Change:
    """A task's result raised while applied: its event fails with `error`, and its server
    (unless the task was a clean-up) goes to ERROR naming it. `kind` as stored: a kind no one
    knows is no clean-up."""
    finish: tuple[Effect, ...] = (
        (FinishEvent(event_id, False, error, error),) if isinstance(event_id, int) else ()
    )
    if kind in HOST_CLEANUPS or state is None or state.deleted:
        return Change(effects=finish)
    return replace(_error(error, 500), effects=finish)


def mark_error(message: str, code: int = 500) -> Change:
    return _error(message, code)


def power_observed(state: ServerState, power: int) -> Change:
    """An agent or conductor saw the guest in `power`; reconciled when no task is in flight
    (Nova's _sync_power_states: a guest that stopped by itself becomes SHUTOFF). A paused,
    suspended or rescued server keeps its vm_state whatever is seen: only ACTIVE and SHUTOFF
    are corrected."""
    if state.task_state is not None or state.deleted:
        return NOTHING
    if state.vm_state == VmState.ACTIVE and power in (PowerState.SHUTDOWN, PowerState.CRASHED):
        return Change(power_state=power, vm_state=VmState.STOPPED)
    if state.vm_state == VmState.STOPPED and power == PowerState.RUNNING:
        return Change(power_state=power, vm_state=VmState.ACTIVE)
    return Change(power_state=power)


# ------------------------------------------------------------------------ the baremetal's


def adopted(powered_on: bool, host: str) -> Change:
    """An adopted machine's new server record: ACTIVE (STOPPED if its power is off) on the
    node, launched, its create action recorded as an adoption."""
    return Change(
        vm_state=VmState.ACTIVE if powered_on else VmState.STOPPED,
        task_state=None,
        power_state=int(PowerState.RUNNING if powered_on else PowerState.SHUTDOWN),
        host=host,
        launched=True,
        progress=100,
        effects=(RecordAction("create", "baremetal_adopt", host),),
    )
