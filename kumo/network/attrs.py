"""Reading a Neutron request body by hand: the envelope (`{"network": {...}}`), attributes
nobody may set, and Neutron's converters (booleans given as text, integers, strings)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from kumo.network.errors import InvalidInput
from kumo.validation import MAX_INT, int_text

MAX_NAME = 255


def envelope(body: object, key: str, allowed: Iterable[str]) -> dict[str, Any]:
    """The resource object under `key`, with no attribute outside `allowed` (Neutron: 400
    "Unrecognized attribute(s) ..."). `tenant_id` is read as `project_id`."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise InvalidInput(f"Resource body required: an object under '{key}'")
    if len(body) != 1:
        extra = ", ".join(sorted(k for k in body if k != key))
        raise InvalidInput(f"Unrecognized attribute(s) '{extra}'")
    attrs: dict[str, Any] = dict(body[key])
    if "tenant_id" in attrs:
        tenant = attrs.pop("tenant_id")
        if attrs.setdefault("project_id", tenant) != tenant:
            raise InvalidInput("'project_id' and 'tenant_id' do not match")
    unknown = sorted(set(attrs) - set(allowed))
    if unknown:
        raise InvalidInput(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    return attrs


def boolean(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidInput(f"'{value}' is not a valid boolean value for {name}")


def text(value: object, name: str, max_len: int = MAX_NAME) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"'{value}' is not a valid string for {name}")
    if len(value) > max_len:
        raise InvalidInput(f"'{value[:32]}...' exceeds maximum length of {max_len} for {name}")
    return value


def integer(value: object, name: str, low: int, high: int = MAX_INT) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"'{value}' is not an integer for {name}")
    number = int_text(value.strip()) if isinstance(value, str) else value
    if not isinstance(number, int):  # the message names what was sent, not what it failed to read as
        raise InvalidInput(f"'{value}' is not an integer for {name}")
    value = number
    if not low <= value <= high:
        raise InvalidInput(f"{name} {value} is out of range: it must be between {low} and {high}")
    return value


def uuid_text(value: object, name: str) -> str:
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise InvalidInput(f"'{value}' is not a valid UUID for {name}")


def project_of(attrs: dict[str, Any], ctx_project: str | None, is_admin: bool) -> str:
    """The owner of a new resource: the caller's project, or any project an admin names."""
    wanted = attrs.get("project_id")
    if wanted is None or wanted == ctx_project:
        if not ctx_project:
            raise InvalidInput("a project-scoped token is needed to create networking resources")
        return ctx_project
    if not is_admin:
        raise InvalidInput("Only admins may create resources on behalf of other projects")
    return text(wanted, "project_id", 64)
