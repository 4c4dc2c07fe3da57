"""The server lifecycle's transitions, table by table: every (vm_state, task_state) x action
allowed or refused (with Nova's message), and the exact Change of every transition."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

import kumo.schema  # noqa: F401  (every table, for create_all)
from kumo.compute import lifecycle as lc
from kumo.compute import lifecycle_apply as apply_
from kumo.compute import states
from kumo.compute.lifecycle import (
    NOTHING,
    UNCHANGED,
    BeginAction,
    BeginMigration,
    BindPorts,
    CancelTasks,
    Change,
    Enqueue,
    Fault,
    FinishEvent,
    ForgetOldFlavor,
    LeaveGroups,
    MigrationStatus,
    RecordAction,
    Ref,
    Release,
    ReleasePort,
    ReleasePorts,
    RenameConsumer,
    RevertFlavor,
    ServerState,
    StartEvent,
    TaskOutcome,
)
from kumo.compute.models import Instance, InstanceAction, InstanceActionEvent
from kumo.compute.states import PowerState, TaskState, VmState
from kumo.db import Base, Database
from kumo.errors import BadRequest, Conflict, InvalidState
from kumo.image import service as image_service
from kumo.image.models import Image
from kumo.work.kinds import ActionPayload, TaskKind

UUID = "i-1"
MIGRATION = lc.migration_consumer(UUID)
RUNNING, SHUTDOWN, CRASHED, NOSTATE = (
    int(PowerState.RUNNING),
    int(PowerState.SHUTDOWN),
    int(PowerState.CRASHED),
    int(PowerState.NOSTATE),
)
VM_STATES = [
    VmState.BUILDING,
    VmState.ACTIVE,
    VmState.STOPPED,
    VmState.RESIZED,
    VmState.PAUSED,
    VmState.SUSPENDED,
    VmState.RESCUED,
    VmState.ERROR,
    VmState.DELETED,
    VmState.SHELVED,
    VmState.SHELVED_OFFLOADED,
]
TASK_STATES: list[str | None] = [None, *sorted(states.ALL_TASKS)]
LIVE = set(VM_STATES) - {VmState.DELETED}
EVERY_TASK = set(states.ALL_TASKS)

# Written out, not read from states.ACTIONS: kind -> (vm_states it starts from, task_states it
# may interrupt; no task in flight is always fine).
ALLOWED: dict[str, tuple[set[str], set[str]]] = {
    "spawn": ({VmState.BUILDING}, set()),
    "stop": ({VmState.ACTIVE, VmState.ERROR}, set()),
    "start": ({VmState.STOPPED}, set()),
    "reboot": ({VmState.ACTIVE}, set()),
    "reboot_hard": ({VmState.ACTIVE, VmState.STOPPED, VmState.ERROR}, set()),
    "rebuild": ({VmState.ACTIVE, VmState.STOPPED, VmState.ERROR}, set()),
    "live_migrate": ({VmState.ACTIVE}, set()),
    "migrate": ({VmState.ACTIVE, VmState.STOPPED}, set()),
    "revert_resize": ({VmState.RESIZED}, set()),
    "delete": (LIVE, EVERY_TASK - {TaskState.DELETING}),
    "force_delete": (LIVE, EVERY_TASK),
    "local_delete": (LIVE, EVERY_TASK),
    "reset_state": (LIVE, EVERY_TASK),
    "evacuate": ({VmState.ACTIVE, VmState.STOPPED, VmState.ERROR}, set()),
    "attach_interface": ({VmState.ACTIVE, VmState.STOPPED}, set()),
    "detach_interface": ({VmState.ACTIVE, VmState.STOPPED}, set()),
    "pause": ({VmState.ACTIVE}, set()),
    "unpause": ({VmState.PAUSED}, set()),
    "suspend": ({VmState.ACTIVE}, set()),
    "resume": ({VmState.SUSPENDED}, set()),
    "rescue": ({VmState.ACTIVE, VmState.STOPPED, VmState.ERROR}, set()),
    "unrescue": ({VmState.RESCUED}, set()),
    "resize": ({VmState.ACTIVE, VmState.STOPPED}, set()),
    "trigger_crash_dump": (
        {VmState.ACTIVE, VmState.PAUSED, VmState.RESCUED, VmState.RESIZED, VmState.ERROR},
        set(),
    ),
    # Nova's check_instance_state of snapshot, backup and shelve: ACTIVE, SHUTOFF, PAUSED, SUSPENDED
    "snapshot": ({VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED}, set()),
    "backup": ({VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED}, set()),
    "shelve": ({VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED}, set()),
    "shelve_offload": ({VmState.SHELVED}, set()),
    "unshelve": ({VmState.SHELVED}, set()),
    "unshelve_offloaded": ({VmState.SHELVED_OFFLOADED}, set()),
    "restore": ({VmState.SOFT_DELETED}, set()),
}
NOVA_NAME = {
    "spawn": "create",
    "stop": "stop",
    "start": "start",
    "reboot": "reboot",
    "reboot_hard": "reboot",
    "rebuild": "rebuild",
    "live_migrate": "live-migration",
    "migrate": "migrate",
    "revert_resize": "revertResize",
    "delete": "delete",
    "force_delete": "delete",
    "local_delete": "delete",
    "reset_state": "resetState",
    "evacuate": "evacuate",
    "attach_interface": "attach_interface",
    "detach_interface": "detach_interface",
    "pause": "pause",
    "unpause": "unpause",
    "suspend": "suspend",
    "resume": "resume",
    "rescue": "rescue",
    "unrescue": "unrescue",
    "resize": "resize",
    "trigger_crash_dump": "trigger_crash_dump",
    "snapshot": "createImage",
    "backup": "createBackup",
    "shelve": "shelve",
    "shelve_offload": "shelveOffload",
    "unshelve": "unshelve",
    "unshelve_offloaded": "unshelve",
    "restore": "restore",
}


def server(
    vm_state: str = VmState.ACTIVE,
    task_state: str | None = None,
    power: int = RUNNING,
    host: str | None = "h1",
    **kw: Any,
) -> ServerState:
    return ServerState(UUID, vm_state, task_state, power, host, **kw)


def test_the_table_covers_every_action() -> None:
    assert set(ALLOWED) == set(states.ACTIONS) == set(NOVA_NAME)


def _cross() -> list[tuple[str, str, str | None, str | None]]:
    """Every (kind, vm_state, task_state) with the refusal expected (None: allowed)."""
    rows = []
    for kind, vm_state, task_state in itertools.product(sorted(ALLOWED), VM_STATES, TASK_STATES):
        vm_ok, interrupts = ALLOWED[kind]
        name = NOVA_NAME[kind]
        refusal = None
        if vm_state not in vm_ok:
            refusal = f"Cannot '{name}' instance {UUID} while it is in vm_state {vm_state}"
        elif task_state is not None and task_state not in interrupts:
            refusal = f"Cannot '{name}' instance {UUID} while it is in task_state {task_state}"
        rows.append((kind, vm_state, task_state, refusal))
    return rows


CROSS = _cross()
ALLOWED_ROWS = [r[:3] for r in CROSS if r[3] is None]
REFUSED_ROWS = [r for r in CROSS if r[3] is not None]


def test_the_cross_product_has_both_kinds() -> None:
    assert len(CROSS) == len(ALLOWED) * len(VM_STATES) * len(TASK_STATES)
    assert ALLOWED_ROWS and REFUSED_ROWS


@pytest.mark.parametrize(("kind", "vm_state", "task_state"), ALLOWED_ROWS)
def test_allowed(kind: str, vm_state: str, task_state: str | None) -> None:
    assert lc.allowed(server(vm_state, task_state), kind) is states.ACTIONS[kind]


@pytest.mark.parametrize(("kind", "vm_state", "task_state", "message"), REFUSED_ROWS)
def test_refused(kind: str, vm_state: str, task_state: str | None, message: str) -> None:
    with pytest.raises(InvalidState) as refused:
        lc.allowed(server(vm_state, task_state), kind)
    assert refused.value.message == message


# ------------------------------------------------------------------------------ requests

A, E, SPEC = Ref.ACTION, Ref.EVENT, Ref.SPEC


def _begun(
    kind: str, event: str, task_state: str, host: str, extra: dict[str, Any], task_kind: str = ""
) -> Change:
    payload = {"action_id": A, "event_id": E, "instance": SPEC, **extra}
    return Change(
        task_state=task_state,
        effects=(BeginAction(NOVA_NAME[kind], event, host), Enqueue(host, task_kind or kind, payload)),
        wake=host,
    )


# (kind, vm_state, task_state set, agent event, extra payload)
REQUESTS = [
    ("stop", VmState.ACTIVE, TaskState.POWERING_OFF, "compute_stop_instance", {}),
    ("stop", VmState.ERROR, TaskState.POWERING_OFF, "compute_stop_instance", {}),
    ("start", VmState.STOPPED, TaskState.POWERING_ON, "compute_start_instance", {}),
    ("reboot", VmState.ACTIVE, TaskState.REBOOTING, "compute_reboot_instance", {"hard": False}),
    ("reboot_hard", VmState.ACTIVE, TaskState.REBOOTING_HARD, "compute_reboot_instance", {"hard": True}),
    ("reboot_hard", VmState.STOPPED, TaskState.REBOOTING_HARD, "compute_reboot_instance", {"hard": True}),
    ("reboot_hard", VmState.ERROR, TaskState.REBOOTING_HARD, "compute_reboot_instance", {"hard": True}),
    ("rebuild", VmState.ACTIVE, TaskState.REBUILDING, "compute_rebuild_instance", {"stop_after": False}),
    ("rebuild", VmState.STOPPED, TaskState.REBUILDING, "compute_rebuild_instance", {"stop_after": True}),
    ("rebuild", VmState.ERROR, TaskState.REBUILDING, "compute_rebuild_instance", {"stop_after": False}),
]


@pytest.mark.parametrize(("kind", "vm_state", "task_state", "event", "extra"), REQUESTS)
def test_request(kind: str, vm_state: str, task_state: str, event: str, extra: dict[str, Any]) -> None:
    change = lc.request(server(vm_state), kind, is_admin=False)
    assert change == _begun(kind, event, task_state, "h1", extra)


def test_request_extra_goes_into_the_payload() -> None:
    change = lc.request(server(), "rebuild", is_admin=False, extra={"image_ref": "img"})
    extra = {"stop_after": False, "image_ref": "img"}
    assert change == _begun("rebuild", "compute_rebuild_instance", TaskState.REBUILDING, "h1", extra)


def test_a_locked_server_refuses_all_but_admins_before_its_state() -> None:
    locked = server(VmState.DELETED, locked=True)
    with pytest.raises(Conflict) as refused:
        lc.request(locked, "stop", is_admin=False)
    assert refused.value.message == f"Instance {UUID} is locked"
    assert not isinstance(refused.value, InvalidState)
    with pytest.raises(InvalidState):
        lc.request(locked, "stop", is_admin=True)
    assert lc.request(server(locked=True), "stop", is_admin=True).task_state == TaskState.POWERING_OFF


def test_a_server_without_host_refuses_an_agent_action() -> None:
    with pytest.raises(Conflict) as refused:
        lc.request(server(host=None), "stop", is_admin=False)
    assert refused.value.message == f"Instance {UUID} has no host yet"


# A move's migration record as it starts: (migration_type, source, dest, status)
MIGRATION_RECORD = {
    "migrate": ("migration", "h1", "h2", "pre-migrating"),
    "live_migrate": ("live-migration", "h1", "h2", "preparing"),
}
# (kind, vm_state, agent event, task_state)
MOVES = [
    ("migrate", VmState.ACTIVE, "compute_resize_instance", TaskState.RESIZE_MIGRATING),
    ("migrate", VmState.STOPPED, "compute_resize_instance", TaskState.RESIZE_MIGRATING),
    ("live_migrate", VmState.ACTIVE, "compute_live_migration", TaskState.MIGRATING),
]


@pytest.mark.parametrize(("kind", "vm_state", "event", "task_state"), MOVES)
def test_a_move_starts_with_the_destination_preparing(
    kind: str, vm_state: str, event: str, task_state: str
) -> None:
    change = lc.request_move(server(vm_state), kind, "h2", is_admin=True)
    extra = {"dest": "h2", "source": "h1", "move": kind}
    begun = _begun(kind, event, task_state, "h2", extra, task_kind="prepare_migration")
    record = BeginMigration(*MIGRATION_RECORD[kind])
    assert change == begun.then(record)


def test_revert_resize_prepares_the_source() -> None:
    change = lc.revert_resize(server(VmState.RESIZED, host="h2", migration_source="h1"), is_admin=False)
    extra = {"dest": "h1", "source": "h2", "move": "revert_resize"}
    expected = _begun(
        "revert_resize",
        "compute_revert_resize",
        TaskState.RESIZE_REVERTING,
        "h1",
        extra,
        task_kind="prepare_migration",
    )
    # the source's task carries the server's old flavor (REVERTED_SPEC); the server keeps its
    # new one until the revert is done (Nova's finish_revert_resize swaps them)
    begin, enqueue = expected.effects
    assert isinstance(enqueue, Enqueue)
    reverted = replace(enqueue, payload={**enqueue.payload, "instance": Ref.REVERTED_SPEC})
    assert change == replace(expected, effects=(begin, reverted)).then(MigrationStatus("reverting"))
    assert not any(isinstance(effect, RevertFlavor) for effect in change.effects)


@pytest.mark.parametrize(
    "state",
    [
        server(VmState.RESIZED),
        *(server(vm, migration_source="h0") for vm in VM_STATES if vm != VmState.RESIZED),
    ],
)
def test_revert_resize_refused(state: ServerState) -> None:
    with pytest.raises(InvalidState) as refused:
        lc.revert_resize(state, is_admin=True)
    assert (
        refused.value.message
        == f"Cannot 'revertResize' instance {UUID} while it is in vm_state {state.vm_state}"
    )


@pytest.mark.parametrize(("power", "vm_state"), [(RUNNING, VmState.ACTIVE), (SHUTDOWN, VmState.STOPPED)])
def test_confirm_resize(power: int, vm_state: str) -> None:
    change = lc.confirm_resize(server(VmState.RESIZED, TaskState.REBOOTING, power, migration_source="h0"))
    assert change == Change(
        vm_state=vm_state,
        migration_source=None,
        effects=(
            Release(MIGRATION),
            ForgetOldFlavor(),
            RecordAction("confirmResize", "compute_confirm_resize", "h1"),
            MigrationStatus("confirmed"),
        ),
    )


@pytest.mark.parametrize("vm_state", [vm for vm in VM_STATES if vm != VmState.RESIZED])
def test_confirm_resize_refused(vm_state: str) -> None:
    with pytest.raises(InvalidState) as refused:
        lc.confirm_resize(server(vm_state))
    assert (
        refused.value.message == f"Cannot 'confirmResize' instance {UUID} while it is in vm_state {vm_state}"
    )


@pytest.mark.parametrize(
    ("vm_state", "task_state", "requested"),
    [(vm, task, word) for vm in sorted(LIVE) for task in TASK_STATES for word in ("active", "error")],
)
def test_reset_state(vm_state: str, task_state: str | None, requested: str) -> None:
    change = lc.reset_state(server(vm_state, task_state), requested)
    record = RecordAction("resetState", "api_reset_state", "h1", f"state reset to {requested}")
    assert change == Change(vm_state=requested, task_state=None, effects=(record,))


@pytest.mark.parametrize("requested", ["active", "error"])
def test_reset_state_after_a_failed_revert(requested: str) -> None:
    """Reset to active from ERROR still holding a move's source share (a failed revert)
    releases that share and forgets the old flavor; reset to error keeps them."""
    errored = server(VmState.ERROR, migration_source="h0")
    change = lc.reset_state(errored, requested)
    record = RecordAction("resetState", "api_reset_state", "h1", f"state reset to {requested}")
    if requested == "error":
        assert change == Change(vm_state=VmState.ERROR, task_state=None, effects=(record,))
        return
    released = (record, Release(lc.migration_consumer(UUID)), ForgetOldFlavor())
    assert change == Change(vm_state=VmState.ACTIVE, task_state=None, migration_source=None, effects=released)


def test_reset_state_refused_once_deleted() -> None:
    with pytest.raises(InvalidState) as refused:
        lc.reset_state(server(VmState.DELETED), "active")
    assert refused.value.message == f"Cannot 'resetState' instance {UUID} while it is in vm_state deleted"


@pytest.mark.parametrize("value", ["stopped", "ACTIVE", None, 1, ["active"]])
def test_reset_target_refuses(value: object) -> None:
    with pytest.raises(BadRequest) as refused:
        lc.reset_target(value)
    why = f"Value: {value}. {value!r} is not one of ['active', 'error']"
    assert refused.value.message == f"Invalid input for field/attribute state. {why}"


@pytest.mark.parametrize("value", ["active", "error"])
def test_reset_target(value: str) -> None:
    assert lc.reset_target(value) == value


def test_created() -> None:
    assert lc.created() == Change(
        vm_state=VmState.BUILDING,
        task_state=TaskState.SCHEDULING,
        effects=(BeginAction("create", states.SCHEDULE_EVENT),),
    )


# -------------------------------------------------------------------------------- delete

FINALIZED = (Release(UUID), Release(MIGRATION), LeaveGroups(), ReleasePorts())


def _remote(event_host: str = "h1") -> Change:
    payload = {"action_id": A, "event_id": E, "instance": SPEC}
    return Change(
        task_state=TaskState.DELETING,
        effects=(
            BeginAction("delete"),
            CancelTasks(),
            StartEvent("compute_terminate_instance", event_host),
            Enqueue(event_host, "delete", payload),
        ),
        wake=event_host,
    )


def _local(host: str | None, *middle: Enqueue) -> Change:
    details = None if host is None else f"Host {host} is down: deleted locally"
    return Change(
        vm_state=VmState.DELETED,
        task_state=None,
        power_state=NOSTATE,
        deleted=True,
        effects=(
            BeginAction("delete"),
            CancelTasks(),
            StartEvent("api_local_delete", host),
            *middle,
            *FINALIZED,
            FinishEvent(E, True, details),
        ),
    )


CLEANUP = Enqueue("h1", "cleanup", {"instance": SPEC, "why": "deleted while its host was down"})
ABORT_H2 = Enqueue("h2", "abort_migration", {"instance": SPEC, "dest": "h2"})

# (state, force, host_down, move destination read, expected)
DELETES = [
    (server(), False, False, None, _remote()),
    (server(VmState.BUILDING, TaskState.SPAWNING), False, False, None, _remote()),
    (server(VmState.STOPPED, TaskState.DELETING), True, False, None, _remote()),
    (server(host=None), False, False, None, _local(None)),
    (server(VmState.BUILDING, TaskState.SCHEDULING, host=None), True, False, None, _local(None)),
    (server(), False, True, None, _local("h1", CLEANUP)),
    (server(VmState.ACTIVE, TaskState.DELETING), False, True, None, _local("h1", CLEANUP)),
    (server(VmState.ACTIVE, TaskState.MIGRATING), False, True, "h2", _local("h1", CLEANUP, ABORT_H2)),
    (server(VmState.RESIZED, TaskState.RESIZE_REVERTING), True, True, "h2", _local("h1", CLEANUP, ABORT_H2)),
    # the destination is the host itself, or no move is in flight: no abort
    (server(VmState.ACTIVE, TaskState.MIGRATING), False, True, "h1", _local("h1", CLEANUP)),
    (server(VmState.ACTIVE, TaskState.REBOOTING), False, True, "h2", _local("h1", CLEANUP)),
]


@pytest.mark.parametrize(("state", "force", "host_down", "dest", "expected"), DELETES)
def test_delete(state: ServerState, force: bool, host_down: bool, dest: str | None, expected: Change) -> None:
    change = lc.delete(state, is_admin=False, force=force, host_down=host_down, move_destination=dest)
    assert change == expected


@pytest.mark.parametrize(
    ("state", "force", "host_down", "message"),
    [
        (server(VmState.ACTIVE, TaskState.DELETING), False, False, "in task_state deleting"),
        (server(VmState.DELETED), False, False, "in vm_state deleted"),
        (server(VmState.DELETED), True, False, "in vm_state deleted"),
        (server(VmState.DELETED), False, True, "in vm_state deleted"),
    ],
)
def test_delete_refused(state: ServerState, force: bool, host_down: bool, message: str) -> None:
    with pytest.raises(InvalidState) as refused:
        lc.delete(state, is_admin=True, force=force, host_down=host_down)
    assert refused.value.message == f"Cannot 'delete' instance {UUID} while it is {message}"


def test_delete_of_a_locked_server() -> None:
    with pytest.raises(Conflict) as refused:
        lc.delete(server(locked=True), is_admin=False)
    assert refused.value.message == f"Instance {UUID} is locked"
    assert lc.delete(server(locked=True), is_admin=True) == _remote()


@pytest.mark.parametrize(
    ("task_state", "moving"),
    [(t, t in ("migrating", "resize_migrating", "resize_reverting", "resize_prep")) for t in TASK_STATES],
)
def test_moving(task_state: str | None, moving: bool) -> None:
    assert lc.moving(server(task_state=task_state)) is moving


# ------------------------------------------------------------------------------ evacuate


@pytest.mark.parametrize(
    ("vm_state", "asked", "stop_after"),
    [
        (VmState.ACTIVE, False, False),
        (VmState.STOPPED, False, True),
        (VmState.ERROR, False, False),
        # 2.95: stopped at the destination whatever the state before
        (VmState.ACTIVE, True, True),
        (VmState.ERROR, True, True),
    ],
)
def test_evacuate(vm_state: str, asked: bool, stop_after: bool) -> None:
    payload = {"action_id": A, "event_id": E, "source": "h1", "stop_after": stop_after, "instance": SPEC}
    assert lc.evacuate(server(vm_state), "h2", stop_after=asked) == Change(
        host="h2",
        zone_from_host=True,
        task_state=TaskState.REBUILDING,
        effects=(
            Release(MIGRATION),
            CancelTasks(),
            BeginAction("evacuate", "compute_rebuild_instance", "h2"),
            BeginMigration("evacuation", "h1", "h2", "accepted"),
            Enqueue("h1", "cleanup", {"instance": SPEC, "why": "evacuated to h2"}),
            BindPorts("h2"),
            Enqueue("h2", "evacuate", payload),
        ),
        wake="h2",
    )


def test_evacuate_without_a_host() -> None:
    with pytest.raises(Conflict) as refused:
        lc.evacuation_source(server(host=None))
    assert refused.value.message == f"Cannot 'evacuate' instance {UUID}: it has no host"
    with pytest.raises(Conflict):
        lc.evacuate(server(host=None), "h2")


@pytest.mark.parametrize(
    "state", [server(VmState.BUILDING), server(VmState.RESIZED), server(task_state=TaskState.REBOOTING)]
)
def test_evacuate_refused(state: ServerState) -> None:
    with pytest.raises(InvalidState):
        lc.evacuate(state, "h2")


# ---------------------------------------------------------------------------- scheduling


class _Event:
    id = 7
    action_id = 3


PENDING = server(VmState.BUILDING, TaskState.SCHEDULING, NOSTATE, host=None)


def test_placed_with_its_scheduling_event() -> None:
    assert lc.placed(PENDING, "h1", "az1", _Event()) == Change(
        host="h1",
        availability_zone="az1",
        task_state=TaskState.SPAWNING,
        effects=(
            FinishEvent(7, True, None),
            StartEvent(lc.SPAWN_EVENT, "h1", 3),
            BindPorts("h1", first_placement=True),
            Enqueue("h1", "spawn", {"event_id": E, "instance": SPEC}),
        ),
        wake="h1",
    )


def test_placed_against_a_soft_policy_notes_it() -> None:
    change = lc.placed(PENDING, "h1", None, _Event(), "not spread", ("spread_not_honoured", "not spread"))
    assert change.effects == (
        FinishEvent(7, True, "not spread"),
        StartEvent("spread_not_honoured", "h1", 3),
        FinishEvent(E, True, "not spread"),
        StartEvent(lc.SPAWN_EVENT, "h1", 3),
        BindPorts("h1", first_placement=True),
        Enqueue("h1", "spawn", {"event_id": E, "instance": SPEC}),
    )


def test_placed_without_an_event() -> None:
    change = lc.placed(PENDING, "h1", "az1", None)
    assert change.effects == (
        BindPorts("h1", first_placement=True),
        Enqueue("h1", "spawn", {"event_id": None, "instance": SPEC}),
    )


@pytest.mark.parametrize("state", [server(), server(VmState.BUILDING, TaskState.SPAWNING)])
def test_placed_refused_unless_pending(state: ServerState) -> None:
    with pytest.raises(InvalidState):
        lc.placed(state, "h1", None, None)


def test_no_valid_host() -> None:
    error = Change(vm_state=VmState.ERROR, task_state=None, fault=Fault("No valid host", 500))
    assert lc.no_valid_host(PENDING, "No valid host", None) == error
    failed = FinishEvent(7, False, "No valid host")
    assert lc.no_valid_host(PENDING, "No valid host", _Event()) == error.then(failed)


UNSHELVING = replace(PENDING, shelved_image="snap")
OFFLOADED = Change(vm_state=VmState.SHELVED_OFFLOADED, task_state=None, power_state=NOSTATE, host=None)


def test_no_valid_host_for_an_unshelve_leaves_it_offloaded() -> None:
    """Nova: a failed unshelve keeps SHELVED_OFFLOADED (no fault), its scheduling event failed."""
    failed = FinishEvent(7, False, "No valid host")
    assert lc.no_valid_host(UNSHELVING, "No valid host", _Event()) == OFFLOADED.then(failed)
    released = replace(OFFLOADED, effects=(Release(UUID),))
    assert lc.scheduling_failed(UNSHELVING, "bad", "tb", None) == released


def test_scheduling_failed() -> None:
    error = Change(
        vm_state=VmState.ERROR, task_state=None, fault=Fault("bad spec", 500), effects=(Release(UUID),)
    )
    assert lc.scheduling_failed(PENDING, "bad spec", "tb", None) == error
    assert lc.scheduling_failed(PENDING, "bad spec", "tb", _Event()) == error.then(
        FinishEvent(7, False, "bad spec", "tb")
    )


# --------------------------------------------------------------------------- task results


def outcome(
    kind: str, ok: bool, power: int | None = None, error: str | None = "boom", **payload: Any
) -> TaskOutcome:
    return TaskOutcome(
        kind,
        "h1",
        ok,
        {"event_id": 5, "action_id": 4, **payload},
        error=None if ok else error,
        traceback=None if ok else "tb",
        power=power,
    )


def fin(ok: bool) -> FinishEvent:
    return FinishEvent(5, ok, None if ok else "boom", None if ok else "tb")


def _done(vm: str | None, power: int, **kw: Any) -> Change:
    return Change(vm_state=UNCHANGED if vm is None else vm, task_state=None, power_state=power, **kw)


# (state, outcome, expected Change without the event's finish, which every row has first)
SETTLED = [
    # successes: the action's done vm_state, the reported power or the action's
    (
        server(VmState.BUILDING, TaskState.SPAWNING, NOSTATE),
        outcome("spawn", True),
        _done(VmState.ACTIVE, RUNNING, launched=True, progress=100),
    ),
    (
        server(VmState.BUILDING, TaskState.SPAWNING, NOSTATE),
        outcome("spawn", True, SHUTDOWN),
        _done(VmState.ACTIVE, SHUTDOWN, launched=True, progress=100),
    ),
    (server(task_state=TaskState.POWERING_OFF), outcome("stop", True), _done(VmState.STOPPED, SHUTDOWN)),
    (
        server(VmState.STOPPED, TaskState.POWERING_ON, SHUTDOWN),
        outcome("start", True),
        _done(VmState.ACTIVE, RUNNING),
    ),
    (server(task_state=TaskState.REBOOTING), outcome("reboot", True), _done(VmState.ACTIVE, RUNNING)),
    (
        server(VmState.ERROR, TaskState.REBOOTING_HARD),
        outcome("reboot_hard", True),
        _done(VmState.ACTIVE, RUNNING),
    ),
    (server(task_state=TaskState.REBUILDING), outcome("rebuild", True), _done(VmState.ACTIVE, RUNNING)),
    (
        server(task_state=TaskState.REBUILDING),
        outcome("evacuate", True),
        _done(VmState.ACTIVE, RUNNING).then(MigrationStatus("done")),
    ),
    # rebuilt or evacuated while stopped: stopped again, within the action
    (
        server(VmState.STOPPED, TaskState.REBUILDING, SHUTDOWN),
        outcome("rebuild", True, stop_after=True),
        Change(
            vm_state=VmState.ACTIVE,
            task_state=TaskState.POWERING_OFF,
            power_state=RUNNING,
            effects=(Enqueue("h1", "stop", {"action_id": 4, "event_id": None, "instance": SPEC}),),
            wake="h1",
        ),
    ),
    (
        server(VmState.STOPPED, TaskState.REBUILDING, SHUTDOWN),
        outcome("evacuate", True, stop_after=True),
        Change(
            vm_state=VmState.ACTIVE,
            task_state=TaskState.POWERING_OFF,
            power_state=RUNNING,
            effects=(
                MigrationStatus("done"),
                Enqueue("h1", "stop", {"action_id": 4, "event_id": None, "instance": SPEC}),
            ),
            wake="h1",
        ),
    ),
    # failures: spawn and evacuate go to ERROR with a fault; others keep their state
    (
        server(VmState.BUILDING, TaskState.SPAWNING, NOSTATE),
        outcome("spawn", False),
        Change(vm_state=VmState.ERROR, task_state=None, fault=Fault("boom")),
    ),
    (
        server(VmState.BUILDING, TaskState.SPAWNING, NOSTATE),
        outcome("spawn", False, error=""),
        Change(vm_state=VmState.ERROR, task_state=None, fault=Fault("Build of instance failed")),
    ),
    (
        server(task_state=TaskState.REBUILDING),
        outcome("evacuate", False, error=""),
        Change(
            vm_state=VmState.ERROR,
            task_state=None,
            fault=Fault("Evacuation of instance failed"),
            effects=(MigrationStatus("failed"),),
        ),
    ),
    (server(task_state=TaskState.POWERING_OFF), outcome("stop", False), Change(task_state=None)),
    (
        server(task_state=TaskState.POWERING_OFF),
        outcome("stop", False, CRASHED),
        Change(task_state=None, power_state=CRASHED),
    ),
    (server(task_state=TaskState.REBUILDING), outcome("rebuild", False), Change(task_state=None)),
    # delete
    (
        server(task_state=TaskState.DELETING),
        outcome("delete", True),
        Change(
            vm_state=VmState.DELETED, task_state=None, power_state=NOSTATE, deleted=True, effects=FINALIZED
        ),
    ),
    (
        server(task_state=TaskState.DELETING),
        outcome("delete", False),
        Change(vm_state=VmState.ERROR, task_state=None, fault=Fault("boom")),
    ),
    (
        server(task_state=TaskState.DELETING),
        outcome("delete", False, error=""),
        Change(vm_state=VmState.ERROR, task_state=None, fault=Fault("delete failed")),
    ),
]
MOVE = {"dest": "h2", "source": "h1"}
UNDO = (Release(UUID), RenameConsumer(MIGRATION, UUID))
ABORT = Enqueue("h2", "abort_migration", {"instance": SPEC, "dest": "h2"})
SETTLED += [
    (
        server(task_state=TaskState.MIGRATING),
        outcome("live_migrate", True, **MOVE),
        Change(
            task_state=None,
            host="h2",
            zone_from_host=True,
            effects=(BindPorts("h2"), MigrationStatus("completed"), Release(MIGRATION)),
        ),
    ),
    (
        server(task_state=TaskState.RESIZE_MIGRATING),
        outcome("migrate", True, SHUTDOWN, **MOVE),
        Change(
            task_state=None,
            power_state=SHUTDOWN,
            host="h2",
            zone_from_host=True,
            vm_state=VmState.RESIZED,
            migration_source="h1",
            resized=True,
            effects=(BindPorts("h2"), MigrationStatus("finished")),
        ),
    ),
    (
        server(VmState.RESIZED, TaskState.RESIZE_REVERTING),
        outcome("revert_resize", True, **MOVE),
        Change(
            task_state=None,
            host="h2",
            zone_from_host=True,
            vm_state=VmState.ACTIVE,
            migration_source=None,
            effects=(RevertFlavor(), BindPorts("h2"), MigrationStatus("reverted"), *UNDO),
        ),
    ),
    (
        server(VmState.RESIZED, TaskState.RESIZE_REVERTING),
        outcome("revert_resize", True, SHUTDOWN, **MOVE),
        Change(
            task_state=None,
            power_state=SHUTDOWN,
            host="h2",
            zone_from_host=True,
            vm_state=VmState.STOPPED,
            migration_source=None,
            effects=(RevertFlavor(), BindPorts("h2"), MigrationStatus("reverted"), *UNDO),
        ),
    ),
    (
        server(VmState.RESIZED, TaskState.RESIZE_REVERTING, SHUTDOWN),
        outcome("revert_resize", True, **MOVE),
        Change(
            task_state=None,
            host="h2",
            zone_from_host=True,
            vm_state=VmState.STOPPED,
            migration_source=None,
            effects=(RevertFlavor(), BindPorts("h2"), MigrationStatus("reverted"), *UNDO),
        ),
    ),
    (
        server(task_state=TaskState.MIGRATING),
        outcome("live_migrate", False, **MOVE),
        Change(task_state=None, effects=(*UNDO, MigrationStatus("error"), ABORT), wake="h2"),
    ),
    (
        server(task_state=TaskState.RESIZE_MIGRATING),
        outcome("migrate", False, RUNNING, **MOVE),
        Change(
            task_state=None, power_state=RUNNING, effects=(*UNDO, MigrationStatus("error"), ABORT), wake="h2"
        ),
    ),
    (
        server(VmState.RESIZED, TaskState.RESIZE_REVERTING),
        # ERROR with the fault where it was resized to; its migration record errors, as Nova's
        outcome("revert_resize", False, **MOVE),
        Change(
            vm_state=VmState.ERROR,
            task_state=None,
            fault=Fault("Reverting the resize failed: boom", 500),
            effects=(MigrationStatus("error"), ABORT),
            wake="h2",
        ),
    ),
]


@pytest.mark.parametrize(("state", "result", "expected"), SETTLED)
def test_settled(state: ServerState, result: TaskOutcome, expected: Change) -> None:
    change = lc.settled(state, result)
    finish = FinishEvent(5, result.ok, result.error, result.traceback)
    assert change == replace(expected, effects=(finish, *expected.effects))


@pytest.mark.parametrize("ok", [True, False])
@pytest.mark.parametrize("gone", [None, server(VmState.DELETED, deleted=True)])
@pytest.mark.parametrize("kind", ["spawn", "stop", "delete", "migrate", "evacuate"])
def test_settled_without_a_server_finishes_the_event_only(
    kind: str, gone: ServerState | None, ok: bool
) -> None:
    assert lc.settled(gone, outcome(kind, ok, **MOVE)) == Change(effects=(fin(ok),))


def test_settled_without_an_event() -> None:
    result = TaskOutcome("stop", "h1", True, {"action_id": 4})
    assert lc.settled(server(task_state=TaskState.POWERING_OFF), result) == _done(VmState.STOPPED, SHUTDOWN)


PORT = {"id": "p-1", "network_id": "n-1", "mac_address": "fa:16:3e:00:00:01"}


@pytest.mark.parametrize("kind", [TaskKind.ATTACH_INTERFACE, TaskKind.DETACH_INTERFACE])
@pytest.mark.parametrize("vm_state", [VmState.ACTIVE, VmState.STOPPED])
def test_change_interface_leaves_the_states_alone(kind: TaskKind, vm_state: str) -> None:
    change = lc.change_interface(server(vm_state), kind, PORT, is_admin=False)
    payload = {"action_id": A, "event_id": E, "instance": SPEC, "port": PORT}
    event = f"compute_{kind}"
    assert change == Change(
        effects=(BeginAction(str(kind), event, "h1"), Enqueue("h1", kind, payload)), wake="h1"
    )


@pytest.mark.parametrize(
    ("state", "refusal"),
    [
        (server(task_state=TaskState.POWERING_OFF), InvalidState),
        (server(VmState.ERROR), InvalidState),
        (server(VmState.BUILDING, TaskState.SCHEDULING, host=None), InvalidState),
        (server(locked=True), Conflict),
    ],
)
def test_change_interface_refused(state: ServerState, refusal: type[Exception]) -> None:
    with pytest.raises(refusal):
        lc.change_interface(state, TaskKind.ATTACH_INTERFACE, PORT, is_admin=False)


@pytest.mark.parametrize(
    ("kind", "ok", "released"),
    [("attach_interface", True, False), ("attach_interface", False, True),
     ("detach_interface", True, True), ("detach_interface", False, False)],
)  # fmt: skip
@pytest.mark.parametrize("task_state", [None, TaskState.POWERING_OFF])
def test_interface_settled(kind: str, ok: bool, released: bool, task_state: str | None) -> None:
    """The port leaves the server when unplugged, or when plugging it failed; the server's
    states are never touched (a stop begun meanwhile keeps its task_state)."""
    change = lc.settled(server(task_state=task_state), outcome(kind, ok, port=PORT))
    effects = (ReleasePort("p-1"),) if released else ()
    assert change == Change(effects=(fin(ok), *effects))


@pytest.mark.parametrize("kind", ["abort_migration", "cleanup"])
@pytest.mark.parametrize("ok", [True, False])
def test_cleanups_change_nothing(kind: str, ok: bool) -> None:
    assert lc.settled(server(), outcome(kind, ok)) is NOTHING


def prepare(ok: bool, move: str, error: str | None = "no disk") -> TaskOutcome:
    payload = {
        "event_id": 5,
        "action_id": 4,
        "dest": "h2",
        "source": "h1",
        "move": move,
        "instance": {"old": 1},
    }
    return TaskOutcome(
        "prepare_migration", "h2", ok, payload, error=None if ok else error, target={"uri": "x"}
    )


@pytest.mark.parametrize("move", ["migrate", "live_migrate", "revert_resize"])
def test_prepared_hands_the_move_to_the_source(move: str) -> None:
    result = prepare(True, move)
    # a revert's move carries the old flavor's spec, as its preparation did
    spec = Ref.REVERTED_SPEC if move == "revert_resize" else SPEC
    payload = {**result.payload, "instance": spec, "target": {"uri": "x"}}
    status = {"migrate": "migrating", "live_migrate": "running", "revert_resize": "reverting"}[move]
    assert lc.settled(server(task_state=TaskState.MIGRATING), result) == Change(
        effects=(MigrationStatus(status), Enqueue("h1", move, payload)), wake="h1"
    )


# (move, ok, server's host, why)
PREPARE_FAILED = [
    ("migrate", False, "h1", "Preparing h2 failed: no disk"),
    ("live_migrate", False, "h1", "Preparing h2 failed: no disk"),
    ("revert_resize", False, "h1", "Preparing h2 failed: no disk"),
    ("migrate", True, "h9", f"Preparing h2 failed: Instance {UUID} left h1 before the move began"),
    ("revert_resize", True, "h9", f"Preparing h2 failed: Instance {UUID} left h1 before the move began"),
]


@pytest.mark.parametrize(("move", "ok", "host", "why"), PREPARE_FAILED)
def test_prepared_failed(move: str, ok: bool, host: str, why: str) -> None:
    undo = (MigrationStatus("error"),) if move == "revert_resize" else (*UNDO, MigrationStatus("error"))
    # a revert that could not be prepared errors the server out with the fault, as Nova
    errored = (
        {"vm_state": VmState.ERROR, "fault": Fault(f"Reverting the resize failed: {why}", 500)}
        if move == "revert_resize"
        else {}
    )
    assert lc.settled(server(task_state=TaskState.MIGRATING, host=host), prepare(ok, move)) == Change(
        task_state=None, effects=(FinishEvent(5, False, why, why), *undo, ABORT), wake="h2", **errored
    )


@pytest.mark.parametrize("ok", [True, False])
def test_prepared_for_a_server_gone(ok: bool) -> None:
    assert lc.settled(None, prepare(ok, "migrate")) is NOTHING


# (result, expected outcome fields: error, traceback, power, target)
OUTCOMES = [
    ({"power_state": 1}, True, (None, None, 1, None)),
    ({"error": "x", "traceback": "tb"}, False, ("x", "tb", None, None)),
    ({"error": "x"}, False, ("x", "x", None, None)),
    ({}, False, ("unknown error", "unknown error", None, None)),
    ({"error": None}, False, ("None", "None", None, None)),
    ({"target": {"uri": "u"}, "power_state": "4"}, True, (None, None, 4, {"uri": "u"})),
]


@pytest.mark.parametrize(("result", "ok", "fields"), OUTCOMES)
def test_task_outcome_of_a_report(result: dict[str, Any], ok: bool, fields: tuple[Any, ...]) -> None:
    got = TaskOutcome.of("stop", "h1", ok, {"event_id": 1}, result)
    assert (got.error, got.traceback, got.power, got.target) == fields
    assert (got.kind, got.host, got.ok, got.payload) == ("stop", "h1", ok, {"event_id": 1})


# (state, kind, event id, expected)
FAIL = FinishEvent(9, False, "raised", "raised")
ERROR = Change(vm_state=VmState.ERROR, task_state=None, fault=Fault("raised"))
UNSETTLED = [
    (server(task_state=TaskState.SPAWNING), "spawn", 9, ERROR.then(FAIL)),
    (server(task_state=TaskState.SPAWNING), "spawn", None, ERROR),
    (server(task_state=TaskState.SPAWNING), "spawn", "9", ERROR),
    (server(), "cleanup", 9, Change(effects=(FAIL,))),
    (server(), "abort_migration", None, Change()),
    (None, "stop", 9, Change(effects=(FAIL,))),
    (server(VmState.DELETED, deleted=True), "delete", 9, Change(effects=(FAIL,))),
]


@pytest.mark.parametrize(("state", "kind", "event_id", "expected"), UNSETTLED)
def test_unsettled(state: ServerState | None, kind: str, event_id: object, expected: Change) -> None:
    assert lc.unsettled(state, kind, event_id, "raised") == expected


def test_mark_error() -> None:
    assert lc.mark_error("why", 400) == Change(
        vm_state=VmState.ERROR, task_state=None, fault=Fault("why", 400)
    )


# --------------------------------------------------------------------------- power sync

POWERS = [NOSTATE, RUNNING, int(PowerState.PAUSED), SHUTDOWN, CRASHED, int(PowerState.SUSPENDED)]


def _observed_vm(vm_state: str, power: int) -> str | None:
    if vm_state == VmState.ACTIVE and power in (SHUTDOWN, CRASHED):
        return VmState.STOPPED
    if vm_state == VmState.STOPPED and power == RUNNING:
        return VmState.ACTIVE
    return None


@pytest.mark.parametrize(("vm_state", "power"), list(itertools.product(VM_STATES, POWERS)))
def test_power_observed_without_a_task(vm_state: str, power: int) -> None:
    vm = _observed_vm(vm_state, power)
    expected = Change(power_state=power) if vm is None else Change(power_state=power, vm_state=vm)
    assert lc.power_observed(server(vm_state, power=NOSTATE if power else RUNNING), power) == expected


@pytest.mark.parametrize(("task_state", "power"), list(itertools.product(TASK_STATES[1:], POWERS)))
def test_power_observed_during_a_task_changes_nothing(task_state: str, power: int) -> None:
    assert lc.power_observed(server(task_state=task_state), power) is NOTHING


def test_power_observed_once_deleted_changes_nothing() -> None:
    assert lc.power_observed(server(deleted=True), SHUTDOWN) is NOTHING


# ------------------------------------------------------------------------------ baremetal


@pytest.mark.parametrize(
    ("on", "vm_state", "power"), [(True, VmState.ACTIVE, RUNNING), (False, VmState.STOPPED, SHUTDOWN)]
)
def test_adopted(on: bool, vm_state: str, power: int) -> None:
    assert lc.adopted(on, "node-1") == Change(
        vm_state=vm_state,
        task_state=None,
        power_state=power,
        host="node-1",
        launched=True,
        progress=100,
        effects=(RecordAction("create", "baremetal_adopt", "node-1"),),
    )


# ------------------------------------------------------------------------------ the applier


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'kumo.db'}")
    Base.metadata.create_all(database.engine)
    yield database
    database.dispose()


def _row(session: Session, task_state: str | None, **fields: Any) -> Instance:
    instance = Instance(uuid=UUID, project_id="p1", user_id="u1", name="vm", flavor={}, **fields)
    session.add(instance)
    session.flush()
    instance.task_state = task_state  # a None at INSERT takes the column's default
    session.flush()
    return instance


def test_apply_a_request_fills_in_the_action_event_and_spec(sqlite: Database) -> None:
    queued: list[tuple[Any, ...]] = []
    with sqlite.transaction() as session:
        instance = _row(session, vm_state=VmState.ACTIVE, task_state=None, host="h1")
        change = lc.request(apply_.state_of(instance), "stop", is_admin=False)
        actor = apply_.Requester("req-1", "u1", "p1")
        applied = apply_.apply(session, instance, change, actor, enqueue=lambda *a: queued.append(a[1:]))
        assert instance.task_state == TaskState.POWERING_OFF
        assert applied.wake == "h1" and applied.action_id is not None and applied.event_id is not None
        payload = ActionPayload(applied.action_id, applied.event_id, apply_.spec(instance))
        assert queued == [("h1", TaskKind.STOP, UUID, payload, "req-1")]
        action = session.get(InstanceAction, applied.action_id)
        event = session.get(InstanceActionEvent, applied.event_id)
        assert action is not None and (action.action, action.request_id, action.user_id) == (
            "stop",
            "req-1",
            "u1",
        )
        assert event is not None and (event.event, event.host) == ("compute_stop_instance", "h1")


def test_apply_a_failed_spawn_writes_the_fault(sqlite: Database) -> None:
    with sqlite.transaction() as session:
        instance = _row(session, vm_state=VmState.BUILDING, task_state=TaskState.SPAWNING, host="h1")
        result = TaskOutcome.of("spawn", "h1", False, {}, {"error": "x" * 300})
        change = lc.settled(apply_.state_of(instance), result)
        apply_.apply(session, instance, change, apply_.Requester(None), enqueue=lambda *a: None)
        assert (instance.vm_state, instance.task_state) == (VmState.ERROR, None)
        assert instance.fault is not None
        assert (instance.fault["code"], instance.fault["message"], instance.fault["details"]) == (
            500,
            "x" * 255,
            "x" * 300,
        )


def test_apply_a_local_delete(sqlite: Database) -> None:
    queued: list[tuple[Any, ...]] = []
    cancelled: list[str] = []
    with sqlite.transaction() as session:
        instance = _row(session, vm_state=VmState.ACTIVE, task_state=None, host="h1", power_state=RUNNING)
        change = lc.delete(apply_.state_of(instance), is_admin=False, host_down=True)
        applied = apply_.apply(
            session,
            instance,
            change,
            apply_.Requester("req-2"),
            enqueue=lambda *a: queued.append(a[1:3]),
            cancel=lambda _s, uuid: cancelled.append(uuid),
        )
        assert (instance.vm_state, instance.task_state, instance.power_state) == (
            VmState.DELETED,
            None,
            NOSTATE,
        )
        assert instance.deleted and instance.terminated_at is not None
        assert cancelled == [UUID] and queued == [("h1", "cleanup")] and applied.wake is None
        event = session.get(InstanceActionEvent, applied.event_id)
        assert event is not None and (event.result, event.details) == (
            "Success",
            "Host h1 is down: deleted locally",
        )


def test_write_refuses_a_change_with_effects() -> None:
    with pytest.raises(ValueError):
        apply_.write(Instance(), lc.confirm_resize(server(VmState.RESIZED)))


def test_apply_if_a_server_is_gone_finishes_named_events_only(sqlite: Database) -> None:
    with sqlite.transaction() as session:
        result = outcome("stop", True)
        applied = apply_.apply_if(
            session, None, lc.settled(None, result), apply_.Requester(None), enqueue=lambda *a: None
        )
        assert applied.action_id is None
        with pytest.raises(ValueError):
            apply_.apply_if(session, None, lc.created(), apply_.Requester(None), enqueue=lambda *a: None)


@pytest.mark.parametrize("reported", ["power on", [1], {"a": 1}, True])
def test_a_power_state_that_is_no_integer_is_none(reported: object) -> None:
    got = TaskOutcome.of("node_power", "n1", True, {}, {"power_state": reported})
    assert got.power is None


def test_an_unknown_kind_that_fails_to_settle_marks_its_server() -> None:
    change = lc.unsettled(server(), "no_such_kind", 7, "boom")
    assert change.vm_state == VmState.ERROR
    assert change.effects == (FinishEvent(7, False, "boom", "boom"),)


@pytest.mark.parametrize(
    ("kind", "payload", "image"),
    [
        ("snapshot", {"image_id": "img-1"}, "img-1"),  # createImage and createBackup
        ("shelve", {"image_id": "img-2", "offload": True}, "img-2"),
        ("spawn", {"image_id": "img-3"}, None),  # an unshelve's image is the server's, kept
        ("stop", {}, None),
        ("snapshot", {}, None),
    ],
)
def test_abandoned_image(kind: str, payload: dict[str, Any], image: str | None) -> None:
    assert lc.abandoned_image(kind, payload) == image


def test_a_snapshot_settled_after_its_server_was_deleted_drops_its_unfinished_image() -> None:
    gone = server(VmState.DELETED, deleted=True)
    result = outcome("snapshot", True, RUNNING, image_id="img-1")
    finish = FinishEvent(5, True, None, None)
    assert lc.settled(gone, result) == Change(effects=(finish, lc.DropImage("img-1", unless_active=True)))


@pytest.mark.parametrize("host_down", [True, False])  # a local delete, a delete handed to the host
def test_a_delete_drops_the_images_of_the_snapshot_tasks_it_cancels(
    sqlite: Database, host_down: bool
) -> None:
    with sqlite.transaction() as session:
        instance = _row(session, vm_state=VmState.ACTIVE, task_state=TaskState.IMAGE_SNAPSHOT, host="h1")
        made = [
            image_service.create_snapshot(session, name=n, owner="p1", base=None, properties={}, min_disk=0)
            for n in ("snap", "other")
        ]
        session.flush()
        cancelled = [("snapshot", {"image_id": made[0].id}), ("stop", {})]
        apply_.apply(
            session,
            instance,
            lc.delete(apply_.state_of(instance), is_admin=False, host_down=host_down),
            apply_.Requester("req-3"),
            enqueue=lambda *a: None,
            cancel=lambda _s, _uuid: cancelled,
        )
        assert session.get(Image, made[0].id) is None
        assert session.get(Image, made[1].id) is not None  # no cancelled task's
