"""The state machine's rows for createImage, createBackup, shelve, shelveOffload and unshelve: what each
request starts, and the Change each agent's report makes (the allowed/refused cross table is
tests/unit/compute/test_lifecycle.py's)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from kumo.compute import lifecycle as lc
from kumo.compute import states
from kumo.compute.lifecycle import (
    BeginAction,
    Change,
    DropImage,
    Enqueue,
    FinishEvent,
    Ref,
    Release,
    RotateBackups,
    ServerState,
    TaskOutcome,
)
from kumo.compute.states import PowerState, TaskState, VmState
from kumo.errors import Conflict, InvalidState

UUID = "i-1"
A, E, SPEC = Ref.ACTION, Ref.EVENT, Ref.SPEC
RUNNING, SHUTDOWN, NOSTATE = int(PowerState.RUNNING), int(PowerState.SHUTDOWN), int(PowerState.NOSTATE)


def server(vm_state: str = VmState.ACTIVE, task_state: str | None = None, **kw: Any) -> ServerState:
    kw.setdefault("host", "h1")
    return ServerState(UUID, vm_state, task_state, kw.pop("power", RUNNING), **kw)


def _begun(name: str, event: str, task_state: str, kind: str, extra: dict[str, Any]) -> Change:
    payload = {"action_id": A, "event_id": E, "instance": SPEC, **extra}
    return Change(
        task_state=task_state,
        effects=(BeginAction(name, event, "h1"), Enqueue("h1", kind, payload)),
        wake="h1",
    )


# Nova's check_instance_state of createImage, createBackup and shelve
IMAGEABLE = [VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED]
PAUSED, SUSPENDED = int(PowerState.PAUSED), int(PowerState.SUSPENDED)


@pytest.mark.parametrize("vm_state", IMAGEABLE)
def test_snapshot_starts_on_the_host(vm_state: str) -> None:
    change = lc.snapshot(server(vm_state), "img-1", is_admin=False)
    extra = {"image_id": "img-1"}
    assert change == _begun(
        "createImage", "compute_snapshot_instance", TaskState.IMAGE_SNAPSHOT, "snapshot", extra
    )


@pytest.mark.parametrize("vm_state", IMAGEABLE)
def test_backup_is_a_snapshot_task_under_its_own_action(vm_state: str) -> None:
    change = lc.backup(server(vm_state), "img-1", "daily", 2, project_id="p1", is_admin=False)
    extra = {
        "image_id": "img-1",
        "backup_type": "daily",
        "rotation": 2,
        "project_id": "p1",
        "is_admin": False,
    }
    assert change == _begun(
        "createBackup", "compute_backup_instance", TaskState.IMAGE_BACKUP, "snapshot", extra
    )


@pytest.mark.parametrize("vm_state", IMAGEABLE)
@pytest.mark.parametrize("offload", [True, False])
def test_shelve_carries_the_image_and_whether_to_offload(vm_state: str, offload: bool) -> None:
    change = lc.shelve(server(vm_state), "img-1", offload=offload, is_admin=False)
    extra = {"image_id": "img-1", "offload": offload}
    assert change == _begun("shelve", "compute_shelve_instance", TaskState.SHELVING, "shelve", extra)


def test_shelve_offload_and_unshelve_on_the_host() -> None:
    shelved = server(VmState.SHELVED, power=SHUTDOWN, shelved_image="img-1")
    assert lc.shelve_offload(shelved, is_admin=True) == _begun(
        "shelveOffload",
        "compute_shelve_offload_instance",
        TaskState.SHELVING_OFFLOADING,
        "shelve_offload",
        {},
    )
    assert lc.unshelve(shelved, is_admin=False) == _begun(
        "unshelve", "compute_unshelve_instance", TaskState.UNSHELVING, "unshelve", {}
    )


def test_unshelving_an_offloaded_server_makes_it_pending_scheduling() -> None:
    offloaded = server(VmState.SHELVED_OFFLOADED, host=None, power=NOSTATE, shelved_image="img-1")
    assert lc.unshelve(offloaded, is_admin=False) == Change(
        vm_state=VmState.BUILDING,
        task_state=TaskState.SCHEDULING,
        effects=(BeginAction("unshelve", states.SCHEDULE_EVENT),),
    )


def _backup(state: ServerState) -> Change:
    return lc.backup(state, "i", "daily", 1, project_id="p", is_admin=False)


@pytest.mark.parametrize(
    ("state", "call", "refusal"),
    [
        (server(VmState.SHELVED), lambda s: lc.snapshot(s, "i", is_admin=False), InvalidState),
        (server(VmState.RESCUED), lambda s: lc.snapshot(s, "i", is_admin=False), InvalidState),
        (server(VmState.RESCUED), lambda s: lc.shelve(s, "i", offload=False, is_admin=False), InvalidState),
        (server(VmState.ERROR), _backup, InvalidState),
        (server(VmState.SHELVED_OFFLOADED, host=None), _backup,
         InvalidState),
        (server(task_state=TaskState.IMAGE_SNAPSHOT), _backup,
         InvalidState),
        (server(locked=True), lambda s: lc.shelve(s, "i", offload=False, is_admin=False), Conflict),
        (server(task_state=TaskState.SHELVING), lambda s: lc.shelve(s, "i", offload=True, is_admin=False),
         InvalidState),
        (server(VmState.ACTIVE), lambda s: lc.shelve_offload(s, is_admin=True), InvalidState),
        (server(VmState.ACTIVE), lambda s: lc.unshelve(s, is_admin=False), InvalidState),
        (server(VmState.SHELVED_OFFLOADED, locked=True, host=None), lambda s: lc.unshelve(s, is_admin=False),
         Conflict),
    ],
)  # fmt: skip
def test_refusals(state: ServerState, call: Any, refusal: type[Exception]) -> None:
    with pytest.raises(refusal):
        call(state)


@pytest.mark.parametrize("call", [lambda s: lc.snapshot(s, "i", is_admin=False), _backup])
def test_a_locked_server_is_imaged_for_its_owner(call: Any) -> None:
    """Nova's snapshot() and backup() do not check the lock (NOTE(melwitt): it is meant to
    prevent accidental change or delete of the server)."""
    locked, unlocked = call(server(locked=True)), call(server())
    assert locked == unlocked and locked.task_state in (TaskState.IMAGE_SNAPSHOT, TaskState.IMAGE_BACKUP)


def outcome(kind: str, ok: bool, power: int | None = None, **payload: Any) -> TaskOutcome:
    return TaskOutcome(
        kind,
        "h1",
        ok,
        {"event_id": 5, "action_id": 4, **payload},
        None if ok else "boom",
        None if ok else "tb",
        power,
    )


OFFLOADED = Change(
    vm_state=VmState.SHELVED_OFFLOADED,
    task_state=None,
    power_state=NOSTATE,
    host=None,
    effects=(Release(UUID),),
)
# (server, report, the change after the event's finish)
SETTLED = [
    # createImage: the states stay; a failed one drops its image
    (server(task_state=TaskState.IMAGE_SNAPSHOT), outcome("snapshot", True, RUNNING, image_id="img-1"),
     Change(task_state=None, power_state=RUNNING)),
    (server(task_state=TaskState.IMAGE_SNAPSHOT), outcome("snapshot", False, image_id="img-1"),
     Change(task_state=None, effects=(DropImage("img-1"),))),
    # ... of a paused or suspended server too, which stays so
    (server(VmState.PAUSED, TaskState.IMAGE_SNAPSHOT, power=PAUSED),
     outcome("snapshot", True, PAUSED, image_id="img-1"), Change(task_state=None, power_state=PAUSED)),
    (server(VmState.SUSPENDED, TaskState.IMAGE_SNAPSHOT, power=SUSPENDED),
     outcome("snapshot", True, SUSPENDED, image_id="img-1"), Change(task_state=None, power_state=SUSPENDED)),
    # createBackup: uploaded, the backups of its type beyond the rotation go; failed, its image
    (server(task_state=TaskState.IMAGE_BACKUP),
     outcome("snapshot", True, RUNNING, image_id="img-1", backup_type="daily", rotation=2, project_id="p1"),
     Change(task_state=None, power_state=RUNNING, effects=(RotateBackups("daily", 2, "p1", False),))),
    (server(task_state=TaskState.IMAGE_BACKUP),
     outcome("snapshot", True, RUNNING, image_id="img-1", backup_type="daily", rotation=1, project_id="p2",
             is_admin=True),
     Change(task_state=None, power_state=RUNNING, effects=(RotateBackups("daily", 1, "p2", True),))),
    (server(task_state=TaskState.IMAGE_BACKUP),
     outcome("snapshot", True, RUNNING, image_id="img-1", backup_type="", rotation=0),
     Change(task_state=None, power_state=RUNNING, effects=(RotateBackups("", 0, None, False),))),
    (server(task_state=TaskState.IMAGE_BACKUP),
     outcome("snapshot", False, image_id="img-1", backup_type="daily", rotation=2),
     Change(task_state=None, effects=(DropImage("img-1"),))),
    # shelve: SHELVED keeping its guest and host, or offloaded within the same task
    (server(task_state=TaskState.SHELVING), outcome("shelve", True, SHUTDOWN, image_id="img-1"),
     Change(vm_state=VmState.SHELVED, task_state=None, power_state=SHUTDOWN, shelved_image="img-1")),
    (server(task_state=TaskState.SHELVING), outcome("shelve", True, NOSTATE, image_id="img-1", offload=True),
     Change(vm_state=VmState.SHELVED_OFFLOADED, task_state=None, power_state=NOSTATE, host=None,
            effects=(Release(UUID),), shelved_image="img-1")),
    (server(task_state=TaskState.SHELVING), outcome("shelve", False, SHUTDOWN, image_id="img-1"),
     Change(task_state=None, power_state=SHUTDOWN, effects=(DropImage("img-1"),))),
    # a paused or suspended server shelved: powered off, SHELVED; failed, it stays as it was
    (server(VmState.PAUSED, TaskState.SHELVING, power=PAUSED),
     outcome("shelve", True, SHUTDOWN, image_id="i"),
     Change(vm_state=VmState.SHELVED, task_state=None, power_state=SHUTDOWN, shelved_image="i")),
    (server(VmState.SUSPENDED, TaskState.SHELVING, power=SUSPENDED),
     outcome("shelve", True, NOSTATE, image_id="i", offload=True),
     Change(vm_state=VmState.SHELVED_OFFLOADED, task_state=None, power_state=NOSTATE, host=None,
            effects=(Release(UUID),), shelved_image="i")),
    (server(VmState.PAUSED, TaskState.SHELVING, power=PAUSED), outcome("shelve", False, PAUSED, image_id="i"),
     Change(task_state=None, power_state=PAUSED, effects=(DropImage("i"),))),
    # shelveOffload: no host, no allocations
    (server(VmState.SHELVED, TaskState.SHELVING_OFFLOADING, shelved_image="img-1"),
     outcome("shelve_offload", True), OFFLOADED),
    (server(VmState.SHELVED, TaskState.SHELVING_OFFLOADING), outcome("shelve_offload", False),
     Change(task_state=None)),
    # unshelve on the host: running, the snapshot dropped
    (server(VmState.SHELVED, TaskState.UNSHELVING, shelved_image="img-1"), outcome("unshelve", True, RUNNING),
     Change(vm_state=VmState.ACTIVE, task_state=None, power_state=RUNNING, shelved_image=None,
            effects=(DropImage("img-1"),))),
    (server(VmState.SHELVED, TaskState.UNSHELVING, shelved_image="img-1"), outcome("unshelve", False),
     Change(task_state=None)),
    # an offloaded server spawned again: ACTIVE, the snapshot dropped
    (server(VmState.BUILDING, TaskState.SPAWNING, shelved_image="img-1", power=NOSTATE),
     outcome("spawn", True),
     Change(vm_state=VmState.ACTIVE, task_state=None, power_state=RUNNING, launched=True, progress=100,
            shelved_image=None, effects=(DropImage("img-1"),))),
]  # fmt: skip


@pytest.mark.parametrize(("state", "result", "expected"), SETTLED)
def test_settled(state: ServerState, result: TaskOutcome, expected: Change) -> None:
    change = lc.settled(state, result)
    finish = FinishEvent(5, result.ok, result.error, result.traceback)
    assert change == replace(expected, effects=(finish, *expected.effects))


def test_deleting_a_shelved_server_drops_its_snapshot() -> None:
    change = lc.delete(server(VmState.SHELVED_OFFLOADED, host=None, shelved_image="img-1"), is_admin=False)
    assert change.vm_state == VmState.DELETED
    assert DropImage("img-1") in change.effects


def test_statuses() -> None:
    assert states.status(VmState.SHELVED, None) == "SHELVED"
    assert states.status(VmState.SHELVED_OFFLOADED, TaskState.UNSHELVING) == "SHELVED_OFFLOADED"
    assert states.status(VmState.ACTIVE, TaskState.IMAGE_SNAPSHOT) == "ACTIVE"
