"""The state machine's table for the actions that operate a dead host: which (vm_state,
task_state) each allows, and what a refusal says."""

from __future__ import annotations

import pytest

from kumo.compute import states
from kumo.compute.states import TaskState, VmState
from kumo.errors import InvalidState

OK, REFUSED = True, False

# (action kind, vm_state, task_state, allowed)
CASES = [
    # A plain delete overrides any task but another delete.
    ("delete", VmState.ACTIVE, None, OK),
    ("delete", VmState.BUILDING, TaskState.SPAWNING, OK),
    ("delete", VmState.ACTIVE, TaskState.DELETING, REFUSED),
    # A local delete (the host is down) completes a delete stuck in flight, and a spawn never taken.
    ("local_delete", VmState.ACTIVE, TaskState.DELETING, OK),
    ("local_delete", VmState.BUILDING, TaskState.SPAWNING, OK),
    ("local_delete", VmState.ERROR, None, OK),
    ("local_delete", VmState.DELETED, None, REFUSED),
    # forceDelete on a live host may re-send a delete.
    ("force_delete", VmState.STOPPED, TaskState.DELETING, OK),
    ("force_delete", VmState.DELETED, None, REFUSED),
    # os-resetState: any live instance, whatever is in flight.
    ("reset_state", VmState.BUILDING, TaskState.SPAWNING, OK),
    ("reset_state", VmState.ACTIVE, TaskState.DELETING, OK),
    ("reset_state", VmState.RESIZED, TaskState.RESIZE_REVERTING, OK),
    ("reset_state", VmState.DELETED, None, REFUSED),
    # evacuate: Nova's vm_states, and no task in flight (reset the state first).
    ("evacuate", VmState.ACTIVE, None, OK),
    ("evacuate", VmState.STOPPED, None, OK),
    ("evacuate", VmState.ERROR, None, OK),
    ("evacuate", VmState.BUILDING, None, REFUSED),
    ("evacuate", VmState.RESIZED, None, REFUSED),
    ("evacuate", VmState.ACTIVE, TaskState.REBOOTING, REFUSED),
    # restore: only a soft-deleted server, a state kumo never enters.
    ("restore", VmState.SOFT_DELETED, None, OK),
    ("restore", VmState.ACTIVE, None, REFUSED),
    ("restore", VmState.STOPPED, None, REFUSED),
]


@pytest.mark.parametrize(("kind", "vm_state", "task_state", "allowed"), CASES)
def test_allowed_states(kind: str, vm_state: str, task_state: str | None, allowed: bool) -> None:
    if allowed:
        assert states.check(kind, vm_state, task_state, "i-1") is states.ACTIONS[kind]
        return
    with pytest.raises(InvalidState) as refused:
        states.check(kind, vm_state, task_state, "i-1")
    name = states.ACTIONS[kind].name
    assert f"Cannot '{name}' instance i-1 while it is in" in refused.value.message


# (action kind, task_state it sets, vm_state once done, Nova's action name)
EFFECTS = [
    ("local_delete", None, VmState.DELETED, "delete"),
    ("force_delete", TaskState.DELETING, VmState.DELETED, "delete"),
    ("reset_state", None, None, "resetState"),
    ("evacuate", TaskState.REBUILDING, VmState.ACTIVE, "evacuate"),
]


@pytest.mark.parametrize(("kind", "task_state", "done", "name"), EFFECTS)
def test_what_each_action_sets(kind: str, task_state: str | None, done: str | None, name: str) -> None:
    action = states.ACTIONS[kind]
    assert (action.task_state, action.done_vm_state, action.name) == (task_state, done, name)


def test_an_evacuating_server_shows_rebuild() -> None:
    assert states.status(VmState.ACTIVE, states.ACTIONS["evacuate"].task_state) == "REBUILD"
