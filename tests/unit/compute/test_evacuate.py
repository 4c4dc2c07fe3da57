"""The evacuate body per microversion (Nova's schemas: onSharedStorage required before 2.14 and
gone from it, force from 2.29 to 2.67, the server left stopped from 2.95)."""

from __future__ import annotations

from typing import Any

import pytest

from kumo.compute.evacuate import EvacuateRequest, parse
from kumo.compute.microversion import Microversion
from kumo.errors import BadRequest


def _version(text: str) -> Microversion:
    major, minor = text.split(".")
    return Microversion(int(major), int(minor))


ACCEPTED = [
    ("2.1", {"onSharedStorage": "False"}, EvacuateRequest()),
    ("2.13", {"host": "h2", "onSharedStorage": True}, EvacuateRequest(host="h2", on_shared_storage=True)),
    ("2.13", {"adminPass": "pw", "onSharedStorage": False}, EvacuateRequest(admin_pass="pw")),
    ("2.14", {}, EvacuateRequest()),
    ("2.28", {"host": "h2", "adminPass": "pw"}, EvacuateRequest(host="h2", admin_pass="pw")),
    ("2.29", {"host": "h2", "force": "true"}, EvacuateRequest(host="h2", force=True)),
    ("2.64", {"force": False}, EvacuateRequest()),
    ("2.67", {"host": "h2", "force": True}, EvacuateRequest(host="h2", force=True)),
    ("2.94", {"host": "h2"}, EvacuateRequest(host="h2")),
    ("2.95", {"host": "h2"}, EvacuateRequest(host="h2", stopped=True)),
    ("2.96", {}, EvacuateRequest(stopped=True)),
]


@pytest.mark.parametrize(("version", "body", "expected"), ACCEPTED)
def test_accepted(version: str, body: dict[str, Any], expected: EvacuateRequest) -> None:
    assert parse(body, _version(version)) == expected


REFUSED = [
    ("2.1", {}, "'onSharedStorage' is a required property"),
    ("2.13", {"onSharedStorage": True, "adminPass": "pw"}, "admin password can't be changed"),
    ("2.14", {"onSharedStorage": False}, "'onSharedStorage' was unexpected"),
    ("2.28", {"force": True}, "'force' was unexpected"),
    ("2.29", {"force": True}, "Can't force to a non-provided destination"),
    ("2.29", {"host": "h2", "force": "maybe"}, "Unrecognized value 'maybe' for force"),
    ("2.64", {"host": ""}, "field/attribute host"),
    ("2.64", {"host": ["h2"]}, "field/attribute host"),
    ("2.64", {"adminPass": 7}, "field/attribute adminPass"),
    ("2.64", None, "Value must be an object"),
    ("2.68", {"host": "h2", "force": True}, "'force' was unexpected"),
]


@pytest.mark.parametrize(("version", "body", "message"), REFUSED)
def test_refused(version: str, body: Any, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse(body, _version(version))
    assert message in refused.value.message
