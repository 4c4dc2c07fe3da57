"""The kinds of work a host's agent or a node's conductor does, and each kind's payload.

Invariants:
- `Task.kind` holds a `TaskKind` value; `Task.payload` holds the payload's `to_json()`.
- `P.from_json(p.to_json()) == p` for every payload `p` of class `P` (the unit tests check
  every kind), and `to_json()` writes exactly the keys agents in the field read: a key that was
  absent stays absent (`NodePowerPayload.timeout`), a None that was stored stays stored
  (`SpawnPayload.event_id`).
- `from_json` ignores keys it does not know: an on-enqueued hook may add its own (baremetal
  adds `node`, `image_ref` and `deploy_timeout` for a node's conductor) and reads them itself.
- `from_json` raises `PayloadError`, naming the key, for a missing or mistyped key it needs;
  the lenient fields read as agents always have: a missing `instance` as {}, a missing flag
  as False, a missing `CleanupPayload.why` as "", `MovePayload.target` as any JSON.
- A `TaskKind` is stored as its plain string, never the enum object.

Payloads are frozen dataclasses rather than TypedDicts so that producers and dispatchers hold
one checked value (fields typed, no key misspelt at a call site). One codec, `JsonPayload`,
stores every payload: a payload's stored keys are its field names, each value read and written
by the field's declared type; field metadata names the exceptions (a reader other than its
type's, a key omitted when None).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, Self

ServerSpec = dict[str, Any]  # kumo.compute.servers.spec: what a driver needs of a server
# One port as a server's spec carries it (kumo.network.servers.spec_port); the same JSON object
# type as ServerSpec, so read by the same reader.
PortSpec = dict[str, Any]


class TaskKind(StrEnum):
    # a server's work, on its host's agent (or its node's conductor)
    SPAWN = "spawn"
    START = "start"
    STOP = "stop"
    REBOOT = "reboot"
    REBOOT_HARD = "reboot_hard"
    REBUILD = "rebuild"
    EVACUATE = "evacuate"
    DELETE = "delete"
    # os-interface: hot-plug a port's NIC into the guest (or its definition), or unplug it
    ATTACH_INTERFACE = "attach_interface"
    DETACH_INTERFACE = "detach_interface"
    # createImage and shelve: the guest's root disk uploaded to an image (a shelve powers the
    # guest off first, and destroys it after when offloaded at once); shelveOffload destroys
    # a shelved guest; unshelve powers a shelved guest on (an offloaded one is spawned again)
    SNAPSHOT = "snapshot"
    SHELVE = "shelve"
    SHELVE_OFFLOAD = "shelve_offload"
    UNSHELVE = "unshelve"
    # a move: the destination prepares, the source moves, the destination aborts if it failed
    PREPARE_MIGRATION = "prepare_migration"
    LIVE_MIGRATE = "live_migrate"
    MIGRATE = "migrate"
    REVERT_RESIZE = "revert_resize"
    ABORT_MIGRATION = "abort_migration"
    # day-2 actions on a server's host (a resize is a move, above: its destination may be its host)
    PAUSE = "pause"
    UNPAUSE = "unpause"
    SUSPEND = "suspend"
    RESUME = "resume"
    RESCUE = "rescue"
    UNRESCUE = "unrescue"
    RESIZE = "resize"
    TRIGGER_CRASH_DUMP = "trigger_crash_dump"
    # a host back after being down destroys a guest deleted or moved meanwhile
    CLEANUP = "cleanup"
    # questions: the answer is the task's result, no state changes
    CONSOLE = "console"
    IMAGE_CACHE = "image_cache"
    DIAGNOSTICS = "diagnostics"
    SERIAL_CONSOLE = "serial_console"
    # a baremetal node's own work (no server)
    NODE_VERIFY = "node_verify"
    NODE_CLEAN = "node_clean"
    NODE_ADOPT = "node_adopt"
    NODE_POWER = "node_power"
    # a network host's work (no server): converge a network's DHCP and metadata
    NETWORK_SYNC = "network_sync"
    # a compute host's work (no server): converge its guests' security groups
    FIREWALL_SYNC = "firewall_sync"
    # a compute host's work (no server): copy an image into its cache for a precache job
    PRECACHE = "precache"


MOVES = frozenset({TaskKind.LIVE_MIGRATE, TaskKind.MIGRATE, TaskKind.REVERT_RESIZE, TaskKind.RESIZE})
# A server's NIC plugged or unplugged: its server keeps its states whatever the outcome.
INTERFACE_CHANGES = frozenset({TaskKind.ATTACH_INTERFACE, TaskKind.DETACH_INTERFACE})
# A server's disk to an image (createImage, shelve), and shelve's other steps.
IMAGINGS = frozenset({TaskKind.SNAPSHOT, TaskKind.SHELVE, TaskKind.SHELVE_OFFLOAD, TaskKind.UNSHELVE})
# Work whose settling changes no server: a clean-up on a host.
HOST_CLEANUPS = frozenset({TaskKind.ABORT_MIGRATION, TaskKind.CLEANUP})


class PayloadError(ValueError):
    """A stored payload lacks a key its kind needs, or holds a value of the wrong type."""


class Payload(Protocol):
    def to_json(self) -> dict[str, Any]: ...


# A reader turns a stored value (None when its key is absent) into a field's value, raising
# PayloadError naming the key when it cannot; a writer turns a field's value into JSON.
Reader = Callable[[Any, str], Any]
Writer = Callable[[Any], Any]


def _int_or_none(value: Any, key: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise PayloadError(f"payload key {key!r} must be an integer or null, not {value!r}")


def _bool_or_none(value: Any, key: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise PayloadError(f"payload key {key!r} must be a boolean or null, not {value!r}")


def _str(value: Any, key: str) -> str:
    if isinstance(value, str):
        return value
    raise PayloadError(f"payload key {key!r} must be a string, not {value!r}")


def _str_or_none(value: Any, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise PayloadError(f"payload key {key!r} must be a string or null, not {value!r}")


def _str_or_empty(value: Any, key: str) -> str:
    """Lenient: an absent or empty value reads as "", anything else as its text."""
    return str(value or "")


def _flag(value: Any, key: str) -> bool:
    """Lenient: an absent flag reads as False, anything else by its truth."""
    return bool(value)


def _spec(value: Any, key: str) -> ServerSpec:
    """Lenient: a missing server spec reads as empty (as agents have always read it)."""
    value = value or {}
    if isinstance(value, dict):
        return value
    raise PayloadError(f"payload key {key!r} must be an object, not {value!r}")


def _task_kind(value: Any, key: str) -> TaskKind:
    if isinstance(value, str):
        try:
            return TaskKind(value)
        except ValueError:
            pass
    raise PayloadError(f"payload key {key!r} must be a task kind, not {value!r}")


def _move_kind(value: Any, key: str) -> TaskKind:
    if isinstance(value, str) and value in MOVES:
        return TaskKind(value)
    raise PayloadError(f"payload key {key!r} must be one of {sorted(MOVES)}, not {value!r}")


def _any(value: Any, key: str) -> Any:
    """Any JSON, as stored (None when absent)."""
    return value


def _as_is(value: Any) -> Any:
    return value


# Each declared field type's reader and writer (types as `typing.get_type_hints` resolves them).
_READERS: Mapping[object, Reader] = {
    int | None: _int_or_none,
    str: _str,
    str | None: _str_or_none,
    bool: _flag,
    bool | None: _bool_or_none,
    ServerSpec: _spec,
    TaskKind: _task_kind,
    Any: _any,
}
_WRITERS: Mapping[object, Writer] = {TaskKind: str}  # a kind is stored as its plain string

# Field metadata for what a field's type alone does not say.
_READER = "kinds.reader"  # a reader other than its type's
_OMIT_NONE = "kinds.omit_none"  # a None is not stored: the key stays absent

_MOVE_KIND: Mapping[str, Any] = {_READER: _move_kind}
_LENIENT_STR: Mapping[str, Any] = {_READER: _str_or_empty}
_OMITTED_WHEN_NONE: Mapping[str, Any] = {_OMIT_NONE: True}


@dataclass(frozen=True)
class _Key:
    """How one field is stored: under its field name, by `read` and `write`."""

    name: str
    read: Reader
    write: Writer
    omit_none: bool


def _stored_keys(cls: type[JsonPayload]) -> tuple[_Key, ...]:
    """The stored keys of payload class `cls`, one per field, in field order."""
    hints = typing.get_type_hints(cls)
    keys = []
    for f in dataclasses.fields(cls):
        declared = hints[f.name]
        reader = f.metadata.get(_READER) or _READERS.get(declared)
        if reader is None:
            raise TypeError(f"{cls.__name__}.{f.name}: no payload reader for type {declared!r}")
        keys.append(_Key(f.name, reader, _WRITERS.get(declared, _as_is), bool(f.metadata.get(_OMIT_NONE))))
    return tuple(keys)


_KEYS_OF: dict[type[JsonPayload], tuple[_Key, ...]] = {}  # each class's stored keys, found once


def _keys(cls: type[JsonPayload]) -> tuple[_Key, ...]:
    keys = _KEYS_OF.get(cls)
    if keys is None:
        keys = _KEYS_OF[cls] = _stored_keys(cls)
    return keys


@dataclass(frozen=True)
class JsonPayload:
    """A payload stored as a JSON object whose keys are its field names, each value read and
    written by its field's declared type (or the reader its field metadata names)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in _keys(type(self)):
            value = getattr(self, key.name)
            if value is None and key.omit_none:
                continue
            out[key.name] = key.write(value)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(**{key.name: key.read(raw.get(key.name), key.name) for key in _keys(cls)})


@dataclass(frozen=True)
class SpawnPayload(JsonPayload):
    """Build a server (its event is None when the scheduler found no open one)."""

    event_id: int | None
    instance: ServerSpec


@dataclass(frozen=True)
class ActionPayload(JsonPayload):
    """Start, stop, delete: one step of the server action `action_id`, finishing event
    `event_id` (None for a stop that follows a rebuild within the rebuild's action)."""

    action_id: int | None
    event_id: int | None
    instance: ServerSpec


@dataclass(frozen=True)
class RebootPayload(JsonPayload):
    action_id: int | None
    event_id: int | None
    instance: ServerSpec
    hard: bool


@dataclass(frozen=True)
class RebuildPayload(JsonPayload):
    """Rebuild from `image_ref`; `stop_after`: the server was stopped and is stopped again."""

    action_id: int | None
    event_id: int | None
    instance: ServerSpec
    image_ref: str
    stop_after: bool


@dataclass(frozen=True)
class EvacuatePayload(JsonPayload):
    """Build again from its image on this host a server whose host (`source`) is down."""

    action_id: int | None
    event_id: int | None
    instance: ServerSpec
    source: str
    stop_after: bool


@dataclass(frozen=True)
class RescuePayload(JsonPayload):
    """Boot the server from `image_ref` (the rescue image) with its own disk attached second;
    `admin_pass` is the rescue password (None when passwords are disabled)."""

    action_id: int | None
    event_id: int | None
    instance: ServerSpec
    image_ref: str
    admin_pass: str | None


@dataclass(frozen=True)
class InterfacePayload(JsonPayload):
    """Plug (attach_interface) or unplug (detach_interface) the NIC of `port` on the server's
    guest, as one step of the server action `action_id`, finishing event `event_id`. A detach
    carries the port as it was when asked: it is released once the agent reports success."""

    action_id: int | None
    event_id: int | None
    instance: ServerSpec
    port: PortSpec


@dataclass(frozen=True)
class PrepareMigrationPayload(JsonPayload):
    """On the destination `dest`, before the source moves the server there with `move`."""

    action_id: int | None
    event_id: int | None
    instance: ServerSpec
    dest: str
    source: str | None
    move: TaskKind = field(metadata=_MOVE_KIND)


@dataclass(frozen=True)
class MovePayload(JsonPayload):
    """On the source: move the server to `dest`; `target` is the destination's answer to its
    prepare_migration (where to send the guest), as its driver gave it."""

    action_id: int | None
    event_id: int | None
    instance: ServerSpec
    dest: str
    source: str | None
    move: TaskKind = field(metadata=_MOVE_KIND)
    target: Any

    @classmethod
    def after(cls, prepared: PrepareMigrationPayload, instance: ServerSpec, target: Any) -> Self:
        return cls(
            prepared.action_id,
            prepared.event_id,
            instance,
            prepared.dest,
            prepared.source,
            prepared.move,
            target,
        )


@dataclass(frozen=True)
class AbortMigrationPayload(JsonPayload):
    """On the destination `dest`: drop what was prepared for a move that did not happen."""

    instance: ServerSpec
    dest: str


@dataclass(frozen=True)
class CleanupPayload(JsonPayload):
    """On a host back from the dead: destroy this guest (deleted or rebuilt elsewhere: `why`)."""

    instance: ServerSpec
    why: str = field(metadata=_LENIENT_STR)


@dataclass(frozen=True)
class ConsolePayload(JsonPayload):
    """The last `length` lines of the server's console (None: all of it)."""

    instance: ServerSpec
    length: int | None


@dataclass(frozen=True)
class DiagnosticsPayload(JsonPayload):
    """The server's diagnostics (a question: the answer is the result)."""

    instance: ServerSpec


@dataclass(frozen=True)
class SnapshotPayload(JsonPayload):
    """Upload the server's root disk as the data of image `image_id` (createImage, shelve,
    createBackup); `offload`: a shelve that destroys the guest once its snapshot is uploaded;
    `backup_type` and `rotation`: a backup, after which the backups of that type beyond the
    newest `rotation` are deleted (by the API, when it settles the task), as the requester
    (`project_id`, `is_admin`) may delete them."""

    action_id: int | None
    event_id: int | None
    instance: ServerSpec
    image_id: str
    offload: bool = False
    backup_type: str | None = field(default=None, metadata=_OMITTED_WHEN_NONE)
    rotation: int | None = field(default=None, metadata=_OMITTED_WHEN_NONE)
    project_id: str | None = field(default=None, metadata=_OMITTED_WHEN_NONE)
    is_admin: bool | None = field(default=None, metadata=_OMITTED_WHEN_NONE)


@dataclass(frozen=True)
class SerialConsolePayload(JsonPayload):
    """Where the server's serial console can be reached (a TCP endpoint on its host)."""

    instance: ServerSpec


@dataclass(frozen=True)
class EmptyPayload(JsonPayload):
    """The image cache question, a node's verify / clean / adopt and a host's firewall sync
    (its state is read when run): nothing but the kind."""


@dataclass(frozen=True)
class NodePowerPayload(JsonPayload):
    """Set a node's power to `target` (an Ironic power target); `timeout` only when asked."""

    target: str
    timeout: int | None = field(default=None, metadata=_OMITTED_WHEN_NONE)


@dataclass(frozen=True)
class NetworkSyncPayload(JsonPayload):
    """On the network's DHCP host: apply the network's current DHCP state (read when run)."""

    network_id: str


@dataclass(frozen=True)
class PrecachePayload(JsonPayload):
    """Copy `image_id` into the host's image cache for job `job_id`, trying `sources` in order
    (each {"source": "origin"} or {"source": "peer:<host>", "url": <its peer endpoint>}), each
    transfer capped at `rate` bytes/s (0: none), then pin it for `pin_seconds`. `attempt`: which
    attempt of the (host, image) this is; its progress reports carry it (an earlier attempt's are
    stale)."""

    job_id: str
    image_id: str
    sources: Any
    rate: int | None
    pin_seconds: int | None
    attempt: int | None = field(default=None, metadata=_OMITTED_WHEN_NONE)


AnyPayload = (
    SpawnPayload
    | ActionPayload
    | RebootPayload
    | RebuildPayload
    | EvacuatePayload
    | InterfacePayload
    | RescuePayload
    | DiagnosticsPayload
    | PrepareMigrationPayload
    | MovePayload
    | AbortMigrationPayload
    | CleanupPayload
    | ConsolePayload
    | SnapshotPayload
    | SerialConsolePayload
    | EmptyPayload
    | NodePowerPayload
    | NetworkSyncPayload
    | PrecachePayload
)

PAYLOADS: Mapping[TaskKind, type[AnyPayload]] = {
    TaskKind.SPAWN: SpawnPayload,
    TaskKind.START: ActionPayload,
    TaskKind.STOP: ActionPayload,
    TaskKind.REBOOT: RebootPayload,
    TaskKind.REBOOT_HARD: RebootPayload,
    TaskKind.REBUILD: RebuildPayload,
    TaskKind.EVACUATE: EvacuatePayload,
    TaskKind.DELETE: ActionPayload,
    TaskKind.ATTACH_INTERFACE: InterfacePayload,
    TaskKind.DETACH_INTERFACE: InterfacePayload,
    TaskKind.PREPARE_MIGRATION: PrepareMigrationPayload,
    TaskKind.LIVE_MIGRATE: MovePayload,
    TaskKind.MIGRATE: MovePayload,
    TaskKind.REVERT_RESIZE: MovePayload,
    TaskKind.ABORT_MIGRATION: AbortMigrationPayload,
    TaskKind.CLEANUP: CleanupPayload,
    TaskKind.CONSOLE: ConsolePayload,
    TaskKind.DIAGNOSTICS: DiagnosticsPayload,
    TaskKind.PAUSE: ActionPayload,
    TaskKind.UNPAUSE: ActionPayload,
    TaskKind.SUSPEND: ActionPayload,
    TaskKind.RESUME: ActionPayload,
    TaskKind.RESCUE: RescuePayload,
    TaskKind.UNRESCUE: ActionPayload,
    TaskKind.RESIZE: MovePayload,
    TaskKind.TRIGGER_CRASH_DUMP: ActionPayload,
    TaskKind.IMAGE_CACHE: EmptyPayload,
    TaskKind.SNAPSHOT: SnapshotPayload,
    TaskKind.SHELVE: SnapshotPayload,
    TaskKind.SHELVE_OFFLOAD: ActionPayload,
    TaskKind.UNSHELVE: ActionPayload,
    TaskKind.SERIAL_CONSOLE: SerialConsolePayload,
    TaskKind.NODE_VERIFY: EmptyPayload,
    TaskKind.NODE_CLEAN: EmptyPayload,
    TaskKind.NODE_ADOPT: EmptyPayload,
    TaskKind.NODE_POWER: NodePowerPayload,
    TaskKind.NETWORK_SYNC: NetworkSyncPayload,
    TaskKind.FIREWALL_SYNC: EmptyPayload,
    TaskKind.PRECACHE: PrecachePayload,
}


def kind_of(raw: str) -> TaskKind:
    """The kind a stored string names; PayloadError for a kind no one knows."""
    try:
        return TaskKind(raw)
    except ValueError:
        raise PayloadError(f"unknown task kind {raw}") from None


def parse(kind: TaskKind, raw: Mapping[str, Any]) -> AnyPayload:
    """The typed payload of a stored task of `kind`."""
    return PAYLOADS[kind].from_json(raw)
