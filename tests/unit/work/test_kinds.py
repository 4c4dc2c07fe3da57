"""Every task kind's payload: the stored JSON round-trips, keeps the keys agents read, and a
payload that lacks what its kind needs is refused."""

from __future__ import annotations

from typing import Any

import pytest

from kumo.work import kinds
from kumo.work.kinds import (
    AbortMigrationPayload,
    ActionPayload,
    AnyPayload,
    CleanupPayload,
    ConsolePayload,
    DiagnosticsPayload,
    EmptyPayload,
    EvacuatePayload,
    InterfacePayload,
    MovePayload,
    NetworkSyncPayload,
    NodePowerPayload,
    PayloadError,
    PrecachePayload,
    PrepareMigrationPayload,
    RebootPayload,
    RebuildPayload,
    RescuePayload,
    SerialConsolePayload,
    SnapshotPayload,
    SpawnPayload,
    TaskKind,
)

SPEC = {"uuid": "u-1", "name": "vm", "image_ref": "img", "flavor": {"vcpus": 1}}
PORT = {"id": "p-1", "network_id": "n-1", "mac_address": "fa:16:3e:00:00:01", "tap": "tapp-1"}

# (kind, payload, the JSON stored today for it)
CASES: list[tuple[TaskKind, AnyPayload, dict[str, Any]]] = [
    (TaskKind.SPAWN, SpawnPayload(7, SPEC), {"event_id": 7, "instance": SPEC}),
    (TaskKind.SPAWN, SpawnPayload(None, SPEC), {"event_id": None, "instance": SPEC}),
    (TaskKind.START, ActionPayload(1, 2, SPEC), {"action_id": 1, "event_id": 2, "instance": SPEC}),
    (TaskKind.STOP, ActionPayload(1, None, SPEC), {"action_id": 1, "event_id": None, "instance": SPEC}),
    (TaskKind.DELETE, ActionPayload(1, 2, SPEC), {"action_id": 1, "event_id": 2, "instance": SPEC}),
    (
        TaskKind.ATTACH_INTERFACE,
        InterfacePayload(1, 2, SPEC, PORT),
        {"action_id": 1, "event_id": 2, "instance": SPEC, "port": PORT},
    ),
    (
        TaskKind.DETACH_INTERFACE,
        InterfacePayload(3, None, SPEC, PORT),
        {"action_id": 3, "event_id": None, "instance": SPEC, "port": PORT},
    ),
    (
        TaskKind.REBOOT,
        RebootPayload(1, 2, SPEC, False),
        {"action_id": 1, "event_id": 2, "instance": SPEC, "hard": False},
    ),
    (
        TaskKind.REBOOT_HARD,
        RebootPayload(1, 2, SPEC, True),
        {"action_id": 1, "event_id": 2, "instance": SPEC, "hard": True},
    ),
    (
        TaskKind.REBUILD,
        RebuildPayload(1, 2, SPEC, "img-2", True),
        {"action_id": 1, "event_id": 2, "instance": SPEC, "image_ref": "img-2", "stop_after": True},
    ),
    (
        TaskKind.EVACUATE,
        EvacuatePayload(1, 2, SPEC, "hv-dead", False),
        {"action_id": 1, "event_id": 2, "source": "hv-dead", "stop_after": False, "instance": SPEC},
    ),
    (
        TaskKind.PREPARE_MIGRATION,
        PrepareMigrationPayload(1, 2, SPEC, "hv-2", "hv-1", TaskKind.LIVE_MIGRATE),
        {
            "action_id": 1,
            "event_id": 2,
            "instance": SPEC,
            "dest": "hv-2",
            "source": "hv-1",
            "move": "live_migrate",
        },
    ),
    *[
        (
            move,
            MovePayload(1, 2, SPEC, "hv-2", "hv-1", move, {"uri": "qemu+tcp://hv-2"}),
            {
                "action_id": 1,
                "event_id": 2,
                "instance": SPEC,
                "dest": "hv-2",
                "source": "hv-1",
                "move": str(move),
                "target": {"uri": "qemu+tcp://hv-2"},
            },
        )
        for move in (TaskKind.LIVE_MIGRATE, TaskKind.MIGRATE, TaskKind.REVERT_RESIZE, TaskKind.RESIZE)
    ],
    # a resize (or its revert) on the server's own host: no destination prepared, no target
    (
        TaskKind.RESIZE,
        MovePayload(1, 2, SPEC, "hv-1", "hv-1", TaskKind.RESIZE, None),
        {
            "action_id": 1,
            "event_id": 2,
            "instance": SPEC,
            "dest": "hv-1",
            "source": "hv-1",
            "move": "resize",
            "target": None,
        },
    ),
    *[
        (kind, ActionPayload(1, 2, SPEC), {"action_id": 1, "event_id": 2, "instance": SPEC})
        for kind in (
            TaskKind.PAUSE,
            TaskKind.UNPAUSE,
            TaskKind.SUSPEND,
            TaskKind.RESUME,
            TaskKind.UNRESCUE,
            TaskKind.TRIGGER_CRASH_DUMP,
        )
    ],
    (
        TaskKind.RESCUE,
        RescuePayload(1, 2, SPEC, "img-r", "pw"),
        {"action_id": 1, "event_id": 2, "instance": SPEC, "image_ref": "img-r", "admin_pass": "pw"},
    ),
    (
        TaskKind.RESCUE,
        RescuePayload(1, 2, SPEC, "img-r", None),
        {"action_id": 1, "event_id": 2, "instance": SPEC, "image_ref": "img-r", "admin_pass": None},
    ),
    (TaskKind.DIAGNOSTICS, DiagnosticsPayload(SPEC), {"instance": SPEC}),
    (TaskKind.ABORT_MIGRATION, AbortMigrationPayload(SPEC, "hv-2"), {"instance": SPEC, "dest": "hv-2"}),
    (
        TaskKind.CLEANUP,
        CleanupPayload(SPEC, "evacuated to hv-2"),
        {"instance": SPEC, "why": "evacuated to hv-2"},
    ),
    (TaskKind.CONSOLE, ConsolePayload(SPEC, 50), {"instance": SPEC, "length": 50}),
    (TaskKind.CONSOLE, ConsolePayload(SPEC, None), {"instance": SPEC, "length": None}),
    (TaskKind.IMAGE_CACHE, EmptyPayload(), {}),
    (TaskKind.NODE_VERIFY, EmptyPayload(), {}),
    (TaskKind.NODE_CLEAN, EmptyPayload(), {}),
    (TaskKind.NODE_ADOPT, EmptyPayload(), {}),
    (TaskKind.NODE_POWER, NodePowerPayload("power on"), {"target": "power on"}),
    (
        TaskKind.NODE_POWER,
        NodePowerPayload("soft power off", 30),
        {"target": "soft power off", "timeout": 30},
    ),
    (TaskKind.NETWORK_SYNC, NetworkSyncPayload("net-1"), {"network_id": "net-1"}),
    (TaskKind.FIREWALL_SYNC, EmptyPayload(), {}),
    (
        TaskKind.SNAPSHOT,
        SnapshotPayload(1, 2, SPEC, "img-9"),
        {"action_id": 1, "event_id": 2, "instance": SPEC, "image_id": "img-9", "offload": False},
    ),
    (
        TaskKind.SHELVE,
        SnapshotPayload(1, 2, SPEC, "img-9", True),
        {"action_id": 1, "event_id": 2, "instance": SPEC, "image_id": "img-9", "offload": True},
    ),
    (TaskKind.SHELVE_OFFLOAD, ActionPayload(1, 2, SPEC), {"action_id": 1, "event_id": 2, "instance": SPEC}),
    (TaskKind.UNSHELVE, ActionPayload(1, 2, SPEC), {"action_id": 1, "event_id": 2, "instance": SPEC}),
    (TaskKind.SERIAL_CONSOLE, SerialConsolePayload(SPEC), {"instance": SPEC}),
    (
        TaskKind.PRECACHE,
        PrecachePayload("job-1", "img-9", [{"source": "origin"}], 1000, 3600),
        {
            "job_id": "job-1",
            "image_id": "img-9",
            "sources": [{"source": "origin"}],
            "rate": 1000,
            "pin_seconds": 3600,
        },
    ),
    (
        TaskKind.PRECACHE,
        PrecachePayload("job-1", "img-9", [], 0, 3600, 2),
        {"job_id": "job-1", "image_id": "img-9", "sources": [], "rate": 0, "pin_seconds": 3600, "attempt": 2},
    ),
]


def test_every_kind_has_a_payload_class_and_a_case() -> None:
    assert set(kinds.PAYLOADS) == set(TaskKind)
    assert {kind for kind, _, _ in CASES} == set(TaskKind)


@pytest.mark.parametrize(("kind", "payload", "stored"), CASES, ids=lambda v: str(v)[:40])
def test_the_stored_json_is_todays_and_round_trips(
    kind: TaskKind, payload: AnyPayload, stored: dict[str, Any]
) -> None:
    assert isinstance(payload, kinds.PAYLOADS[kind])
    assert payload.to_json() == stored
    assert kinds.parse(kind, stored) == payload
    assert kinds.parse(kind, payload.to_json()).to_json() == stored


@pytest.mark.parametrize(("kind", "payload", "stored"), CASES, ids=lambda v: str(v)[:40])
def test_keys_a_hook_added_are_ignored(kind: TaskKind, payload: AnyPayload, stored: dict[str, Any]) -> None:
    assert kinds.parse(kind, {**stored, "node": {"uuid": "n-1"}, "deploy_timeout": 60}) == payload


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (TaskKind.REBUILD, {"action_id": 1, "event_id": 2, "instance": SPEC}),  # no image_ref
        (TaskKind.EVACUATE, {"action_id": 1, "event_id": 2, "instance": SPEC, "stop_after": False}),
        (TaskKind.PREPARE_MIGRATION, {"instance": SPEC, "dest": "hv-2", "source": "hv-1", "move": "spawn"}),
        (TaskKind.ABORT_MIGRATION, {"instance": SPEC}),
        (TaskKind.NODE_POWER, {"timeout": 3}),
        (TaskKind.NETWORK_SYNC, {"network_id": 7}),
        (TaskKind.START, {"action_id": "1", "event_id": 2, "instance": SPEC}),
        (TaskKind.SPAWN, {"event_id": True, "instance": SPEC}),
        (TaskKind.CONSOLE, {"instance": "vm", "length": 3}),
    ],
)
def test_a_payload_missing_or_mistyping_what_its_kind_needs_is_refused(
    kind: TaskKind, raw: dict[str, Any]
) -> None:
    with pytest.raises(PayloadError):
        kinds.parse(kind, raw)


def test_a_missing_server_spec_reads_as_empty() -> None:
    assert kinds.parse(TaskKind.START, {"action_id": 1, "event_id": 2}) == ActionPayload(1, 2, {})


def test_kind_of() -> None:
    assert kinds.kind_of("live_migrate") is TaskKind.LIVE_MIGRATE
    with pytest.raises(PayloadError, match="unknown task kind teleport"):
        kinds.kind_of("teleport")


def test_a_move_payload_follows_its_prepare() -> None:
    prepared = PrepareMigrationPayload(1, 2, {"old": True}, "hv-2", "hv-1", TaskKind.MIGRATE)
    assert MovePayload.after(prepared, SPEC, "t") == MovePayload(
        1, 2, SPEC, "hv-2", "hv-1", TaskKind.MIGRATE, "t"
    )
