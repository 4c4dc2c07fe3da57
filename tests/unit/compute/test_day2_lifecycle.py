"""The day-2 actions in the state machine: what each request starts, what each agent's report
settles to (success and failure), the statuses shown meanwhile, a resize's flavor kept and
restored, and power sync leaving paused/suspended/rescued servers alone. The allowed/refused
cross product of every action is tests/unit/compute/test_lifecycle.py's."""

from __future__ import annotations

from typing import Any

import pytest

from kumo.agent.libvirt.domain import power_state
from kumo.compute import day2, states
from kumo.compute import lifecycle as lc
from kumo.compute.lifecycle import (
    NOTHING,
    BeginAction,
    BeginMigration,
    BindPorts,
    Change,
    Enqueue,
    FinishEvent,
    MigrationStatus,
    Ref,
    Release,
    RenameConsumer,
    RevertFlavor,
    ServerState,
    TaskOutcome,
)
from kumo.compute.states import PowerState, TaskState, VmState
from kumo.errors import BadRequest, Conflict
from kumo.work.kinds import TaskKind

UUID = "i-1"
MIGRATION = lc.migration_consumer(UUID)
A, E, SPEC = Ref.ACTION, Ref.EVENT, Ref.SPEC
RUNNING, PAUSED, SHUTDOWN, SUSPENDED = (int(p) for p in (1, 3, 4, 7))


def server(
    vm_state: str = VmState.ACTIVE, task_state: str | None = None, power: int = RUNNING, **kw: Any
) -> ServerState:
    return ServerState(UUID, vm_state, task_state, power, kw.pop("host", "h1"), **kw)


# (kind, from vm_state, task_state set, Nova's action name, agent event, status meanwhile)
REQUESTS = [
    ("pause", VmState.ACTIVE, TaskState.PAUSING, "pause", "compute_pause_instance", "ACTIVE"),
    ("unpause", VmState.PAUSED, TaskState.UNPAUSING, "unpause", "compute_unpause_instance", "PAUSED"),
    ("suspend", VmState.ACTIVE, TaskState.SUSPENDING, "suspend", "compute_suspend_instance", "ACTIVE"),
    ("resume", VmState.SUSPENDED, TaskState.RESUMING, "resume", "compute_resume_instance", "SUSPENDED"),
    ("rescue", VmState.ACTIVE, TaskState.RESCUING, "rescue", "compute_rescue_instance", "RESCUE"),
    ("rescue", VmState.STOPPED, TaskState.RESCUING, "rescue", "compute_rescue_instance", "RESCUE"),
    ("unrescue", VmState.RESCUED, TaskState.UNRESCUING, "unrescue", "compute_unrescue_instance", "RESCUE"),
    (
        "trigger_crash_dump",
        VmState.PAUSED,
        None,
        "trigger_crash_dump",
        "compute_trigger_crash_dump",
        "PAUSED",
    ),
]


@pytest.mark.parametrize(("kind", "vm_state", "task_state", "name", "event", "status"), REQUESTS)
def test_request(
    kind: str, vm_state: str, task_state: str | None, name: str, event: str, status: str
) -> None:
    change = lc.request(server(vm_state), kind, is_admin=False)
    payload = {"action_id": A, "event_id": E, "instance": SPEC}
    assert change == Change(
        task_state=task_state,
        effects=(BeginAction(name, event, "h1"), Enqueue("h1", TaskKind(kind), payload)),
        wake="h1",
    )
    assert states.status(vm_state, task_state) == status


@pytest.mark.parametrize("kind", ["pause", "suspend", "rescue", "resize", "trigger_crash_dump"])
def test_a_lock_refuses_non_admins(kind: str) -> None:
    with pytest.raises(Conflict) as refused:
        lc.request(server(locked=True), kind, is_admin=False)
    assert refused.value.message == f"Instance {UUID} is locked"
    assert lc.request(server(locked=True), kind, is_admin=True).wake == "h1"


def _outcome(kind: str, ok: bool, power: int | None = None, **payload: Any) -> TaskOutcome:
    return TaskOutcome(
        kind=TaskKind(kind),
        host="h1",
        ok=ok,
        payload={"action_id": 5, "event_id": 9, **payload},
        error=None if ok else "the hypervisor said no",
        traceback=None if ok else "the hypervisor said no",
        power=power,
    )


OK_EVENT = FinishEvent(9, True, None, None)
FAILED_EVENT = FinishEvent(9, False, "the hypervisor said no", "the hypervisor said no")

# (state, outcome, the change settled)
SETTLED = [
    (
        server(task_state=TaskState.PAUSING),
        _outcome("pause", True, PAUSED),
        Change(vm_state=VmState.PAUSED, task_state=None, power_state=PAUSED, effects=(OK_EVENT,)),
    ),
    (
        server(VmState.PAUSED, TaskState.UNPAUSING, PAUSED),
        _outcome("unpause", True, RUNNING),
        Change(vm_state=VmState.ACTIVE, task_state=None, power_state=RUNNING, effects=(OK_EVENT,)),
    ),
    (
        server(task_state=TaskState.SUSPENDING),
        _outcome("suspend", True, SUSPENDED),
        Change(vm_state=VmState.SUSPENDED, task_state=None, power_state=SUSPENDED, effects=(OK_EVENT,)),
    ),
    (  # no power reported: the action's own
        server(VmState.SUSPENDED, TaskState.RESUMING, SUSPENDED),
        _outcome("resume", True),
        Change(vm_state=VmState.ACTIVE, task_state=None, power_state=RUNNING, effects=(OK_EVENT,)),
    ),
    (
        server(VmState.STOPPED, TaskState.RESCUING, SHUTDOWN),
        _outcome("rescue", True, RUNNING),
        Change(vm_state=VmState.RESCUED, task_state=None, power_state=RUNNING, effects=(OK_EVENT,)),
    ),
    (
        server(VmState.RESCUED, TaskState.UNRESCUING),
        _outcome("unrescue", True, RUNNING),
        Change(vm_state=VmState.ACTIVE, task_state=None, power_state=RUNNING, effects=(OK_EVENT,)),
    ),
    (  # a failure leaves the vm_state as it was (Nova), its event saying why
        server(task_state=TaskState.SUSPENDING),
        _outcome("suspend", False),
        Change(task_state=None, effects=(FAILED_EVENT,)),
    ),
    (  # an NMI changes no state, whatever else began meanwhile
        server(task_state=TaskState.PAUSING),
        _outcome("trigger_crash_dump", True),
        Change(effects=(OK_EVENT,)),
    ),
    (
        server(task_state=TaskState.PAUSING),
        _outcome("trigger_crash_dump", False),
        Change(effects=(FAILED_EVENT,)),
    ),
]


@pytest.mark.parametrize(("state", "outcome", "expected"), SETTLED)
def test_settled(state: ServerState, outcome: TaskOutcome, expected: Change) -> None:
    assert lc.settled(state, outcome) == expected


# ------------------------------------------------------------------------------------ resize

MOVE = {"action_id": A, "event_id": E, "instance": SPEC}


def test_a_resize_to_another_host_prepares_it() -> None:
    change = lc.request_resize(server(), "h2", is_admin=False)
    payload = {**MOVE, "dest": "h2", "source": "h1", "move": TaskKind.RESIZE}
    assert change == Change(
        task_state=TaskState.RESIZE_PREP,
        effects=(
            BeginAction("resize", "compute_resize_instance", "h2"),
            Enqueue("h2", TaskKind.PREPARE_MIGRATION, payload),
            BeginMigration("resize", "h1", "h2", "pre-migrating"),
        ),
        wake="h2",
    )
    assert states.status(VmState.ACTIVE, TaskState.RESIZE_PREP) == "RESIZE"
    assert lc.moving(server(task_state=TaskState.RESIZE_PREP))


def test_a_resize_on_its_own_host_goes_straight_to_it() -> None:
    change = lc.request_resize(server(VmState.STOPPED, power=SHUTDOWN), "h1", is_admin=False)
    payload = {**MOVE, "dest": "h1", "source": "h1", "move": TaskKind.RESIZE, "target": None}
    assert change.effects == (
        BeginAction("resize", "compute_resize_instance", "h1"),
        Enqueue("h1", TaskKind.RESIZE, payload),
        BeginMigration("resize", "h1", "h1", "pre-migrating"),
    )


def test_a_revert_on_its_own_host_carries_the_old_flavor_and_keeps_the_new() -> None:
    """The task's spec has the old flavor (REVERTED_SPEC); the server's flavor changes only
    once the revert is done (Nova's finish_revert_resize)."""
    state = server(VmState.RESIZED, migration_source="h1")
    change = lc.revert_resize(state, is_admin=False)
    payload = {
        **MOVE,
        "instance": Ref.REVERTED_SPEC,
        "dest": "h1",
        "source": "h1",
        "move": TaskKind.REVERT_RESIZE,
        "target": None,
    }
    assert change.effects == (
        BeginAction("revertResize", "compute_revert_resize", "h1"),
        Enqueue("h1", TaskKind.REVERT_RESIZE, payload),
        MigrationStatus("reverting"),
    )


def test_a_resize_done_waits_for_confirmation() -> None:
    outcome = _outcome("resize", True, RUNNING, dest="h2", source="h1", move="resize")
    change = lc.settled(server(task_state=TaskState.RESIZE_PREP), outcome)
    assert change == Change(
        vm_state=VmState.RESIZED,
        task_state=None,
        power_state=RUNNING,
        host="h2",
        zone_from_host=True,
        migration_source="h1",
        resized=True,
        effects=(OK_EVENT, BindPorts("h2"), MigrationStatus("finished")),
    )


@pytest.mark.parametrize("dest", ["h1", "h2"])
def test_a_failed_resize_gives_back_the_claim_and_the_flavor(dest: str) -> None:
    outcome = _outcome("resize", False, dest=dest, source="h1", move="resize")
    change = lc.settled(server(task_state=TaskState.RESIZE_PREP), outcome)
    undo = (Release(UUID), RenameConsumer(MIGRATION, UUID), RevertFlavor())
    abort = (
        () if dest == "h1" else (Enqueue(dest, TaskKind.ABORT_MIGRATION, {"instance": SPEC, "dest": dest}),)
    )
    assert change.effects == (FAILED_EVENT, *undo, MigrationStatus("error"), *abort)
    assert (change.task_state, change.vm_state) == (None, lc.UNCHANGED)


def test_a_failed_prepare_of_a_resize_restores_the_flavor() -> None:
    payload = {"action_id": 5, "event_id": 9, "dest": "h2", "source": "h1", "move": "resize"}
    outcome = TaskOutcome(TaskKind.PREPARE_MIGRATION, "h2", False, payload, error="disk full")
    change = lc.settled(server(task_state=TaskState.RESIZE_PREP), outcome)
    assert RevertFlavor() in change.effects and Release(UUID) in change.effects


# ------------------------------------------------------------------------------- power sync


@pytest.mark.parametrize(
    ("vm_state", "seen"),
    [
        (VmState.PAUSED, PAUSED),
        (VmState.PAUSED, SHUTDOWN),
        (VmState.SUSPENDED, SUSPENDED),
        (VmState.SUSPENDED, SHUTDOWN),
        (VmState.RESCUED, SHUTDOWN),
    ],
)
def test_power_sync_leaves_the_vm_state_of_paused_suspended_and_rescued_servers(
    vm_state: str, seen: int
) -> None:
    assert lc.power_observed(server(vm_state), seen) == Change(power_state=seen)


def test_power_sync_ignores_a_server_with_a_task_in_flight() -> None:
    assert lc.power_observed(server(VmState.PAUSED, TaskState.UNPAUSING), RUNNING) is NOTHING


@pytest.mark.parametrize(
    ("libvirt_state", "reason", "power"),
    [
        (3, 1, PowerState.PAUSED),
        (5, 5, PowerState.SUSPENDED),  # shut off by a managed save
        (5, 1, PowerState.SHUTDOWN),
        (5, 2, PowerState.SHUTDOWN),
        (5, None, PowerState.SHUTDOWN),
        (1, 0, PowerState.RUNNING),
    ],
)
def test_libvirt_power_state(libvirt_state: int, reason: int | None, power: PowerState) -> None:
    assert power_state(libvirt_state, reason) == power


# ------------------------------------------------------------------------------ the API's


def test_parse_resize() -> None:
    assert day2.parse_resize({"flavorRef": "2"}) == "2"
    assert day2.parse_resize({"flavorRef": 2, "OS-DCF:diskConfig": "AUTO"}) == "2"
    for bad in (
        None,
        {},
        {"flavorRef": ""},
        {"flavorRef": None},
        {"flavorRef": "1", "x": 1},
        {"flavorRef": True},
    ):
        with pytest.raises(BadRequest):
            day2.parse_resize(bad)


def test_parse_rescue() -> None:
    assert day2.parse_rescue(None) == day2.RescueRequest()
    assert day2.parse_rescue({}) == day2.RescueRequest()
    assert day2.parse_rescue({"adminPass": "pw", "rescue_image_ref": "img"}) == day2.RescueRequest(
        "pw", "img"
    )
    for bad in ([], {"adminPass": 1}, {"other": "x"}):
        with pytest.raises(BadRequest):
            day2.parse_rescue(bad)


RAW = {
    "state": "running",
    "driver": "libvirt",
    "num_cpus": 1,
    "memory_details": {"maximum": 512, "used": 256},
    "cpu_details": [{"id": 0, "time": 17, "utilisation": None}],
    "disk_details": [
        {"read_bytes": 1, "read_requests": 2, "write_bytes": 3, "write_requests": 4, "errors_count": 0}
    ],
    "nic_details": [
        {"rx_octets": 5, "rx_packets": 6, "rx_errors": 0, "rx_drop": 0, "tx_octets": 7, "tx_packets": 8}
    ],
}


def test_diagnostics_at_248_have_every_field() -> None:
    shown = day2.diagnostics_view(RAW, at_least_248=True)
    assert set(shown) == {
        "state", "driver", "hypervisor", "hypervisor_os", "uptime", "config_drive", "num_cpus",
        "num_nics", "num_disks", "memory_details", "cpu_details", "nic_details", "disk_details",
    }  # fmt: skip
    assert shown["memory_details"] == {"maximum": 512, "used": 256} and shown["config_drive"] is False


def test_diagnostics_before_248_are_flat_counters() -> None:
    assert day2.diagnostics_view(RAW, at_least_248=False) == {
        "cpu0_time": 17,
        "memory": 512,
        "vda_read": 1,
        "vda_read_req": 2,
        "vda_write": 3,
        "vda_write_req": 4,
        "vda_errors_count": 0,
        "nic0_rx": 5,
        "nic0_rx_packets": 6,
        "nic0_rx_errors": 0,
        "nic0_rx_drop": 0,
        "nic0_tx": 7,
        "nic0_tx_packets": 8,
    }
