"""The one payload codec: what it writes for a kind, how its lenient fields read, and that a
refusal names the key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kumo.work import kinds
from kumo.work.kinds import PayloadError, TaskKind

SPEC = {"uuid": "u-1"}


def test_a_kind_is_stored_as_its_plain_string() -> None:
    stored = kinds.PrepareMigrationPayload(1, 2, SPEC, "hv-2", None, TaskKind.MIGRATE).to_json()
    assert type(stored["move"]) is str
    assert json.loads(json.dumps(stored))["move"] == "migrate"


def test_the_lenient_fields_read_as_agents_always_have() -> None:
    assert kinds.parse(TaskKind.CLEANUP, {"instance": SPEC}) == kinds.CleanupPayload(SPEC, "")
    assert kinds.parse(TaskKind.CLEANUP, {"instance": SPEC, "why": 3}) == kinds.CleanupPayload(SPEC, "3")
    assert kinds.parse(TaskKind.REBOOT, {"instance": SPEC}) == kinds.RebootPayload(None, None, SPEC, False)
    assert kinds.parse(TaskKind.REBUILD, {"image_ref": "i", "stop_after": 1}) == kinds.RebuildPayload(
        None, None, {}, "i", True
    )
    moved = kinds.parse(TaskKind.MIGRATE, {"dest": "hv-2", "move": "migrate"})
    assert moved == kinds.MovePayload(None, None, {}, "hv-2", None, TaskKind.MIGRATE, None)


def test_a_key_omitted_when_none_stays_absent_and_a_stored_none_stays_stored() -> None:
    assert "timeout" not in kinds.NodePowerPayload("power on").to_json()
    assert kinds.NodePowerPayload.from_json(
        {"target": "power on", "timeout": None}
    ) == kinds.NodePowerPayload("power on")
    assert kinds.ActionPayload(None, None, SPEC).to_json() == {
        "action_id": None,
        "event_id": None,
        "instance": SPEC,
    }


@pytest.mark.parametrize(
    ("kind", "raw", "key"),
    [
        (TaskKind.REBUILD, {"instance": SPEC}, "image_ref"),
        (TaskKind.START, {"action_id": "1"}, "action_id"),
        (TaskKind.CONSOLE, {"instance": ["vm"]}, "instance"),
        (TaskKind.MIGRATE, {"dest": "hv-2", "move": "spawn"}, "move"),
        (TaskKind.PREPARE_MIGRATION, {"dest": "hv-2", "source": 3, "move": "migrate"}, "source"),
        (TaskKind.NODE_POWER, {"target": "power on", "timeout": "30"}, "timeout"),
    ],
)
def test_a_refusal_names_the_key(kind: TaskKind, raw: dict[str, Any], key: str) -> None:
    with pytest.raises(PayloadError, match=repr(key)):
        kinds.parse(kind, raw)
