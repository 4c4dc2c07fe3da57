"""The kinds of work a host's agent or a node's conductor does, and each kind's payload.

Invariants:
- `Task.kind` holds a `TaskKind` value; `Task.payload` holds the payload's `to_json()`.
- `P.from_json(p.to_json()) == p` for every payload `p` of class `P` (the unit tests check
  every kind), and `to_json()` writes exactly the keys agents in the field read: a key that was
  absent stays absent (`NodePowerPayload.timeout`), a None that was stored stays stored
  (`SpawnPayload.event_id`).
- `from_json` ignores keys it does not know: an on-enqueued hook may add its own (baremetal
  adds `node`, `image_ref` and `deploy_timeout` for a node's conductor) and reads them itself.
- `from_json` raises `PayloadError` for a missing or mistyped key it needs.

Payloads are frozen dataclasses rather than TypedDicts so that producers and dispatchers hold
one checked value (fields typed, no key misspelt at a call site); `to_json`/`from_json` are
the only places the stored keys are spelt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, Self

ServerSpec = dict[str, Any]  # kumo.compute.servers.spec: what a driver needs of a server


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
    # a move: the destination prepares, the source moves, the destination aborts if it failed
    PREPARE_MIGRATION = "prepare_migration"
    LIVE_MIGRATE = "live_migrate"
    MIGRATE = "migrate"
    REVERT_RESIZE = "revert_resize"
    ABORT_MIGRATION = "abort_migration"
    # a host back after being down destroys a guest deleted or moved meanwhile
    CLEANUP = "cleanup"
    # questions: the answer is the task's result, no state changes
    CONSOLE = "console"
    IMAGE_CACHE = "image_cache"
    # a baremetal node's own work (no server)
    NODE_VERIFY = "node_verify"
    NODE_CLEAN = "node_clean"
    NODE_ADOPT = "node_adopt"
    NODE_POWER = "node_power"


MOVES = frozenset({TaskKind.LIVE_MIGRATE, TaskKind.MIGRATE, TaskKind.REVERT_RESIZE})
# Work whose settling changes no server: a clean-up on a host.
HOST_CLEANUPS = frozenset({TaskKind.ABORT_MIGRATION, TaskKind.CLEANUP})


class PayloadError(ValueError):
    """A stored payload lacks a key its kind needs, or holds a value of the wrong type."""


class Payload(Protocol):
    def to_json(self) -> dict[str, Any]: ...


def _int_or_none(raw: Mapping[str, Any], key: str) -> int | None:
    value = raw.get(key)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise PayloadError(f"payload key {key!r} must be an integer or null, not {value!r}")


def _str(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if isinstance(value, str):
        return value
    raise PayloadError(f"payload key {key!r} must be a string, not {value!r}")


def _str_or_none(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    raise PayloadError(f"payload key {key!r} must be a string or null, not {value!r}")


def _spec(raw: Mapping[str, Any]) -> ServerSpec:
    """A missing server spec reads as empty (as agents have always read it)."""
    value = raw.get("instance") or {}
    if isinstance(value, dict):
        return value
    raise PayloadError(f"payload key 'instance' must be an object, not {value!r}")


@dataclass(frozen=True)
class SpawnPayload:
    """Build a server (its event is None when the scheduler found no open one)."""

    event_id: int | None
    instance: ServerSpec

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "instance": self.instance}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(_int_or_none(raw, "event_id"), _spec(raw))


@dataclass(frozen=True)
class ActionPayload:
    """Start, stop, delete: one step of the server action `action_id`, finishing event
    `event_id` (None for a stop that follows a rebuild within the rebuild's action)."""

    action_id: int | None
    event_id: int | None
    instance: ServerSpec

    def to_json(self) -> dict[str, Any]:
        return {"action_id": self.action_id, "event_id": self.event_id, "instance": self.instance}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(_int_or_none(raw, "action_id"), _int_or_none(raw, "event_id"), _spec(raw))


@dataclass(frozen=True)
class RebootPayload:
    action_id: int | None
    event_id: int | None
    instance: ServerSpec
    hard: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "event_id": self.event_id,
            "instance": self.instance,
            "hard": self.hard,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(
            _int_or_none(raw, "action_id"), _int_or_none(raw, "event_id"), _spec(raw), bool(raw.get("hard"))
        )


@dataclass(frozen=True)
class RebuildPayload:
    """Rebuild from `image_ref`; `stop_after`: the server was stopped and is stopped again."""

    action_id: int | None
    event_id: int | None
    instance: ServerSpec
    image_ref: str
    stop_after: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "event_id": self.event_id,
            "instance": self.instance,
            "image_ref": self.image_ref,
            "stop_after": self.stop_after,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(
            _int_or_none(raw, "action_id"),
            _int_or_none(raw, "event_id"),
            _spec(raw),
            _str(raw, "image_ref"),
            bool(raw.get("stop_after")),
        )


@dataclass(frozen=True)
class EvacuatePayload:
    """Build again from its image on this host a server whose host (`source`) is down."""

    action_id: int | None
    event_id: int | None
    instance: ServerSpec
    source: str
    stop_after: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "event_id": self.event_id,
            "source": self.source,
            "stop_after": self.stop_after,
            "instance": self.instance,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(
            _int_or_none(raw, "action_id"),
            _int_or_none(raw, "event_id"),
            _spec(raw),
            _str(raw, "source"),
            bool(raw.get("stop_after")),
        )


def _move_kind(raw: Mapping[str, Any]) -> TaskKind:
    value = raw.get("move")
    if isinstance(value, str) and value in MOVES:
        return TaskKind(value)
    raise PayloadError(f"payload key 'move' must be one of {sorted(MOVES)}, not {value!r}")


@dataclass(frozen=True)
class PrepareMigrationPayload:
    """On the destination `dest`, before the source moves the server there with `move`."""

    action_id: int | None
    event_id: int | None
    instance: ServerSpec
    dest: str
    source: str | None
    move: TaskKind

    def to_json(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "event_id": self.event_id,
            "instance": self.instance,
            "dest": self.dest,
            "source": self.source,
            "move": str(self.move),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(
            _int_or_none(raw, "action_id"),
            _int_or_none(raw, "event_id"),
            _spec(raw),
            _str(raw, "dest"),
            _str_or_none(raw, "source"),
            _move_kind(raw),
        )


@dataclass(frozen=True)
class MovePayload:
    """On the source: move the server to `dest`; `target` is the destination's answer to its
    prepare_migration (where to send the guest), as its driver gave it."""

    action_id: int | None
    event_id: int | None
    instance: ServerSpec
    dest: str
    source: str | None
    move: TaskKind
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

    def to_json(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "event_id": self.event_id,
            "instance": self.instance,
            "dest": self.dest,
            "source": self.source,
            "move": str(self.move),
            "target": self.target,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(
            _int_or_none(raw, "action_id"),
            _int_or_none(raw, "event_id"),
            _spec(raw),
            _str(raw, "dest"),
            _str_or_none(raw, "source"),
            _move_kind(raw),
            raw.get("target"),
        )


@dataclass(frozen=True)
class AbortMigrationPayload:
    """On the destination `dest`: drop what was prepared for a move that did not happen."""

    instance: ServerSpec
    dest: str

    def to_json(self) -> dict[str, Any]:
        return {"instance": self.instance, "dest": self.dest}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(_spec(raw), _str(raw, "dest"))


@dataclass(frozen=True)
class CleanupPayload:
    """On a host back from the dead: destroy this guest (deleted or rebuilt elsewhere: `why`)."""

    instance: ServerSpec
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"instance": self.instance, "why": self.why}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(_spec(raw), str(raw.get("why") or ""))


@dataclass(frozen=True)
class ConsolePayload:
    """The last `length` lines of the server's console (None: all of it)."""

    instance: ServerSpec
    length: int | None

    def to_json(self) -> dict[str, Any]:
        return {"instance": self.instance, "length": self.length}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(_spec(raw), _int_or_none(raw, "length"))


@dataclass(frozen=True)
class EmptyPayload:
    """The image cache question and a node's verify / clean / adopt: nothing but the kind."""

    def to_json(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls()


@dataclass(frozen=True)
class NodePowerPayload:
    """Set a node's power to `target` (an Ironic power target); `timeout` only when asked."""

    target: str
    timeout: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target}
        if self.timeout is not None:
            out["timeout"] = self.timeout
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(_str(raw, "target"), _int_or_none(raw, "timeout"))


AnyPayload = (
    SpawnPayload
    | ActionPayload
    | RebootPayload
    | RebuildPayload
    | EvacuatePayload
    | PrepareMigrationPayload
    | MovePayload
    | AbortMigrationPayload
    | CleanupPayload
    | ConsolePayload
    | EmptyPayload
    | NodePowerPayload
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
    TaskKind.PREPARE_MIGRATION: PrepareMigrationPayload,
    TaskKind.LIVE_MIGRATE: MovePayload,
    TaskKind.MIGRATE: MovePayload,
    TaskKind.REVERT_RESIZE: MovePayload,
    TaskKind.ABORT_MIGRATION: AbortMigrationPayload,
    TaskKind.CLEANUP: CleanupPayload,
    TaskKind.CONSOLE: ConsolePayload,
    TaskKind.IMAGE_CACHE: EmptyPayload,
    TaskKind.NODE_VERIFY: EmptyPayload,
    TaskKind.NODE_CLEAN: EmptyPayload,
    TaskKind.NODE_ADOPT: EmptyPayload,
    TaskKind.NODE_POWER: NodePowerPayload,
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
