"""The instance state machine, in one place.

An action is allowed from a set of vm_states when no task is in flight; it sets a task_state and
hands a task of some kind to the host's agent. When the agent reports, `settle` decides the new
vm_state/power_state. Everything else (routes, scheduler, agent API) asks this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from kumo.errors import InvalidState


class VmState:
    BUILDING = "building"
    ACTIVE = "active"
    STOPPED = "stopped"
    RESIZED = "resized"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    RESCUED = "rescued"
    ERROR = "error"
    DELETED = "deleted"
    # shelve: the guest kept (powered off) on its host, or offloaded (no host, no allocations)
    SHELVED = "shelved"
    SHELVED_OFFLOADED = "shelved_offloaded"
    # Nova's deferred delete: never entered in kumo, which deletes at once (Nova with
    # reclaim_instance_interval 0), so `restore` is always refused (409).
    SOFT_DELETED = "soft-delete"


class TaskState:
    SCHEDULING = "scheduling"
    SPAWNING = "spawning"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    REBOOTING = "rebooting"
    REBOOTING_HARD = "rebooting_hard"
    REBUILDING = "rebuilding"
    MIGRATING = "migrating"
    RESIZE_MIGRATING = "resize_migrating"
    RESIZE_REVERTING = "resize_reverting"
    DELETING = "deleting"
    # day-2 actions (kumo.compute.day2)
    PAUSING = "pausing"
    UNPAUSING = "unpausing"
    SUSPENDING = "suspending"
    RESUMING = "resuming"
    RESCUING = "rescuing"
    UNRESCUING = "unrescuing"
    RESIZE_PREP = "resize_prep"
    # snapshot (createImage) and shelve / shelveOffload / unshelve
    IMAGE_SNAPSHOT = "image_snapshot"
    IMAGE_BACKUP = "image_backup"
    SHELVING = "shelving"
    SHELVING_OFFLOADING = "shelving_offloading"
    UNSHELVING = "unshelving"


# Every task_state an instance can be in (an action's `interrupts` default: none of them).
ALL_TASKS: frozenset[str] = frozenset(v for k, v in vars(TaskState).items() if k.isupper())


class PowerState(IntEnum):
    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


@dataclass(frozen=True)
class Action:
    name: str  # the instance-action name Nova records
    event: str  # the event name of the agent's part
    from_vm_states: frozenset[str]
    # None: no task_state is set (the action finishes in the API, or, for an interface
    # attach/detach, its task leaves the server's states alone, as Nova's)
    task_state: str | None
    # vm_state and power state once the agent succeeds (None: keep the current one)
    done_vm_state: str | None
    done_power: PowerState | None
    # task_states the action may start in (a task in flight it overrides); others are a 409
    interrupts: frozenset[str] = frozenset()


def _states(*names: str) -> frozenset[str]:
    return frozenset(names)


# Every vm_state of an instance not deleted yet.
_LIVE = _states(
    VmState.BUILDING,
    VmState.ACTIVE,
    VmState.STOPPED,
    VmState.RESIZED,
    VmState.PAUSED,
    VmState.SUSPENDED,
    VmState.RESCUED,
    VmState.ERROR,
    VmState.SHELVED,
    VmState.SHELVED_OFFLOADED,
)

# The scheduler's part of a create action (Nova's event name); the agent's is ACTIONS["spawn"].
SCHEDULE_EVENT = "conductor_schedule_and_build_instances"

ACTIONS: dict[str, Action] = {
    "spawn": Action(
        "create",
        "compute__do_build_and_run_instance",
        _states(VmState.BUILDING),
        TaskState.SPAWNING,
        VmState.ACTIVE,
        PowerState.RUNNING,
    ),
    "stop": Action(
        "stop",
        "compute_stop_instance",
        _states(VmState.ACTIVE, VmState.ERROR),
        TaskState.POWERING_OFF,
        VmState.STOPPED,
        PowerState.SHUTDOWN,
    ),
    "start": Action(
        "start",
        "compute_start_instance",
        _states(VmState.STOPPED),
        TaskState.POWERING_ON,
        VmState.ACTIVE,
        PowerState.RUNNING,
    ),
    "reboot": Action(
        "reboot",
        "compute_reboot_instance",
        _states(VmState.ACTIVE),
        TaskState.REBOOTING,
        VmState.ACTIVE,
        PowerState.RUNNING,
    ),
    "reboot_hard": Action(
        "reboot",
        "compute_reboot_instance",
        _states(VmState.ACTIVE, VmState.STOPPED, VmState.ERROR),
        TaskState.REBOOTING_HARD,
        VmState.ACTIVE,
        PowerState.RUNNING,
    ),
    "rebuild": Action(
        "rebuild",
        "compute_rebuild_instance",
        _states(VmState.ACTIVE, VmState.STOPPED, VmState.ERROR),
        TaskState.REBUILDING,
        VmState.ACTIVE,
        PowerState.RUNNING,
    ),
    "live_migrate": Action(
        "live-migration", "compute_live_migration", _states(VmState.ACTIVE), TaskState.MIGRATING, None, None
    ),
    "migrate": Action(
        "migrate",
        "compute_resize_instance",
        _states(VmState.ACTIVE, VmState.STOPPED),
        TaskState.RESIZE_MIGRATING,
        VmState.RESIZED,
        None,
    ),
    "revert_resize": Action(
        "revertResize",
        "compute_revert_resize",
        _states(VmState.RESIZED),
        TaskState.RESIZE_REVERTING,
        None,
        None,
    ),
    "delete": Action(
        "delete",
        "compute_terminate_instance",
        _LIVE,
        TaskState.DELETING,
        VmState.DELETED,
        PowerState.NOSTATE,
        interrupts=ALL_TASKS - {TaskState.DELETING},
    ),
    # os-interface: from ACTIVE or SHUTOFF with no task in flight (Nova's check_instance_state);
    # the NIC is plugged into (or out of) the guest by the host's agent.
    "attach_interface": Action(
        "attach_interface",
        "compute_attach_interface",
        _states(VmState.ACTIVE, VmState.STOPPED),
        None,
        None,
        None,
    ),
    "detach_interface": Action(
        "detach_interface",
        "compute_detach_interface",
        _states(VmState.ACTIVE, VmState.STOPPED),
        None,
        None,
        None,
    ),
    # forceDelete on a host that is up: a new delete task even while one is in flight.
    "force_delete": Action(
        "delete",
        "compute_terminate_instance",
        _LIVE,
        TaskState.DELETING,
        VmState.DELETED,
        PowerState.NOSTATE,
        interrupts=ALL_TASKS,
    ),
    # Nova's _local_delete: the host is down (or there never was one), so the API deletes the
    # instance itself, whatever was in flight there (a spawn never taken, a delete never done).
    "local_delete": Action(
        "delete",
        "api_local_delete",
        _LIVE,
        None,
        VmState.DELETED,
        PowerState.NOSTATE,
        interrupts=ALL_TASKS,
    ),
    # Admin only (os-resetState): the vm_state comes with the request; clears any task.
    "reset_state": Action("resetState", "api_reset_state", _LIVE, None, None, None, interrupts=ALL_TASKS),
    # Rebuild on another host from the image after the instance's host died (its service down).
    "evacuate": Action(
        "evacuate",
        "compute_rebuild_instance",
        _states(VmState.ACTIVE, VmState.STOPPED, VmState.ERROR),
        TaskState.REBUILDING,
        VmState.ACTIVE,
        PowerState.RUNNING,
    ),
    # Day-2 actions (Nova's check_instance_state of each; kumo.compute.day2 starts them).
    "pause": Action(
        "pause",
        "compute_pause_instance",
        _states(VmState.ACTIVE),
        TaskState.PAUSING,
        VmState.PAUSED,
        PowerState.PAUSED,
    ),
    "unpause": Action(
        "unpause",
        "compute_unpause_instance",
        _states(VmState.PAUSED),
        TaskState.UNPAUSING,
        VmState.ACTIVE,
        PowerState.RUNNING,
    ),
    "suspend": Action(
        "suspend",
        "compute_suspend_instance",
        _states(VmState.ACTIVE),
        TaskState.SUSPENDING,
        VmState.SUSPENDED,
        PowerState.SUSPENDED,
    ),
    "resume": Action(
        "resume",
        "compute_resume_instance",
        _states(VmState.SUSPENDED),
        TaskState.RESUMING,
        VmState.ACTIVE,
        PowerState.RUNNING,
    ),
    "rescue": Action(
        "rescue",
        "compute_rescue_instance",
        _states(VmState.ACTIVE, VmState.STOPPED, VmState.ERROR),
        TaskState.RESCUING,
        VmState.RESCUED,
        PowerState.RUNNING,
    ),
    "unrescue": Action(
        "unrescue",
        "compute_unrescue_instance",
        _states(VmState.RESCUED),
        TaskState.UNRESCUING,
        VmState.ACTIVE,
        PowerState.RUNNING,
    ),
    # A cold migration to a new flavor (its destination may be its own host).
    "resize": Action(
        "resize",
        "compute_resize_instance",
        _states(VmState.ACTIVE, VmState.STOPPED),
        TaskState.RESIZE_PREP,
        VmState.RESIZED,
        None,
    ),
    # An NMI into the guest: no task_state, the server's states stay as they are.
    "trigger_crash_dump": Action(
        "trigger_crash_dump",
        "compute_trigger_crash_dump",
        _states(VmState.ACTIVE, VmState.PAUSED, VmState.RESCUED, VmState.RESIZED, VmState.ERROR),
        None,
        None,
        None,
    ),
    # createImage: the guest's root disk uploaded to a new image; the server's states stay
    # (Nova's check_instance_state: ACTIVE, SHUTOFF, PAUSED, SUSPENDED).
    "snapshot": Action(
        "createImage",
        "compute_snapshot_instance",
        _states(VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED),
        TaskState.IMAGE_SNAPSHOT,
        None,
        None,
    ),
    # createBackup: a snapshot (the same task) whose image is a rotating backup; once it is
    # uploaded the oldest backups of its type beyond `rotation` are deleted.
    "backup": Action(
        "createBackup",
        "compute_backup_instance",
        _states(VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED),
        TaskState.IMAGE_BACKUP,
        None,
        None,
    ),
    # shelve: powered off and snapshotted; offloaded at once when the payload says so
    # (kumo.compute.lifecycle settles that as shelve_offload's outcome). From ACTIVE, SHUTOFF,
    # PAUSED and SUSPENDED, as Nova: a paused or suspended guest is powered off first.
    "shelve": Action(
        "shelve",
        "compute_shelve_instance",
        _states(VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED),
        TaskState.SHELVING,
        VmState.SHELVED,
        PowerState.SHUTDOWN,
    ),
    "shelve_offload": Action(
        "shelveOffload",
        "compute_shelve_offload_instance",
        _states(VmState.SHELVED),
        TaskState.SHELVING_OFFLOADING,
        VmState.SHELVED_OFFLOADED,
        PowerState.NOSTATE,
    ),
    # unshelve of a guest still on its host: powered on there.
    "unshelve": Action(
        "unshelve",
        "compute_unshelve_instance",
        _states(VmState.SHELVED),
        TaskState.UNSHELVING,
        VmState.ACTIVE,
        PowerState.RUNNING,
    ),
    # restore (os-deferred-delete) of a soft-deleted server: back to active in the API.
    "restore": Action(
        "restore",
        "api_restore_instance",
        _states(VmState.SOFT_DELETED),
        None,
        VmState.ACTIVE,
        PowerState.RUNNING,
    ),
    # unshelve of an offloaded server: pending scheduling again (its scheduler event is the
    # scheduler's own), then spawned from the shelve snapshot by the spawn task.
    "unshelve_offloaded": Action(
        "unshelve",
        SCHEDULE_EVENT,
        _states(VmState.SHELVED_OFFLOADED),
        TaskState.SCHEDULING,
        VmState.ACTIVE,
        PowerState.RUNNING,
    ),
}


def check(kind: str, vm_state: str, task_state: str | None, instance_id: str) -> Action:
    """The action for `kind` if the instance may take it now, else 409 like Nova."""
    action = ACTIONS[kind]
    if vm_state not in action.from_vm_states:
        raise InvalidState(
            f"Cannot '{action.name}' instance {instance_id} while it is in vm_state {vm_state}"
        )
    if task_state is not None and task_state not in action.interrupts:
        raise InvalidState(
            f"Cannot '{action.name}' instance {instance_id} while it is in task_state {task_state}"
        )
    return action


_STATUS_BY_TASK = {
    TaskState.REBOOTING: "REBOOT",
    TaskState.REBOOTING_HARD: "HARD_REBOOT",
    TaskState.REBUILDING: "REBUILD",
    TaskState.MIGRATING: "MIGRATING",
    TaskState.RESIZE_MIGRATING: "RESIZE",
    TaskState.RESIZE_REVERTING: "REVERT_RESIZE",
    TaskState.RESIZE_PREP: "RESIZE",
    TaskState.RESCUING: "RESCUE",
}
_STATUS_BY_VM = {
    VmState.BUILDING: "BUILD",
    VmState.ACTIVE: "ACTIVE",
    VmState.STOPPED: "SHUTOFF",
    VmState.RESIZED: "VERIFY_RESIZE",
    VmState.PAUSED: "PAUSED",
    VmState.SUSPENDED: "SUSPENDED",
    VmState.RESCUED: "RESCUE",
    VmState.ERROR: "ERROR",
    VmState.DELETED: "DELETED",
    VmState.SHELVED: "SHELVED",
    VmState.SHELVED_OFFLOADED: "SHELVED_OFFLOADED",
    VmState.SOFT_DELETED: "SOFT_DELETED",
}


def status(vm_state: str, task_state: str | None) -> str:
    """Nova's API status derived from vm_state and task_state."""
    if vm_state in (VmState.ACTIVE, VmState.STOPPED, VmState.RESIZED) and task_state in _STATUS_BY_TASK:
        return _STATUS_BY_TASK[task_state]
    return _STATUS_BY_VM.get(vm_state, "UNKNOWN")


# status filter values → (vm_state, task_state predicate) used by list filters
VM_STATES_BY_STATUS: dict[str, tuple[str, ...]] = {
    "BUILD": (VmState.BUILDING,),
    "ACTIVE": (VmState.ACTIVE,),
    "SHUTOFF": (VmState.STOPPED,),
    "VERIFY_RESIZE": (VmState.RESIZED,),
    "PAUSED": (VmState.PAUSED,),
    "SUSPENDED": (VmState.SUSPENDED,),
    "RESCUE": (VmState.RESCUED,),
    "ERROR": (VmState.ERROR,),
    "DELETED": (VmState.DELETED,),
    "SHELVED": (VmState.SHELVED,),
    "SHELVED_OFFLOADED": (VmState.SHELVED_OFFLOADED,),
}
