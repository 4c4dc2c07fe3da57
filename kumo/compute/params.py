"""Query-string and body value parsing with Nova's 400 messages (shared by the compute routes)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from kumo.errors import BadRequest

MAX_LIMIT = 1000
MAX_INT = 2147483647

_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}
# Nova's integer pattern, ASCII digits: str.isdigit() also takes "¹", which int() refuses (a 500).
_INTEGER = re.compile(r"^-?[0-9]+$")


@dataclass(frozen=True)
class Page:
    limit: int | None
    marker: str | None


def page(limit: str | None, marker: str | None) -> Page:
    """`limit`/`marker` as Nova's common.get_limit_and_marker reads them."""
    value = None
    if limit is not None:
        try:
            value = int(limit)
        except ValueError:
            raise BadRequest("limit param must be an integer") from None
        if value < 0:
            raise BadRequest("limit param must be positive")
        value = min(value, MAX_LIMIT)
    return Page(limit=value, marker=marker or None)


def strict_bool(value: Any, name: str) -> bool:
    """oslo's bool_from_string(strict=True): anything but a known spelling is a 400."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadRequest(
        f"Unrecognized value '{value}' for {name}, acceptable values are: "
        "'0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
    )


def lenient_bool(value: Any) -> bool:
    """oslo's bool_from_string(strict=False): unknown spellings are False."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def is_uuid_like(value: str) -> bool:
    try:
        return str(uuid.UUID(value)).replace("-", "") == value.replace("-", "").lower()
    except (TypeError, ValueError, AttributeError):
        return False


def integer_id(value: str, name: str = "id") -> int:
    """A path id that must be an integer (aggregates, pre-2.53 services)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input received: {name} must be an integer.") from None
    if not 0 <= number <= MAX_INT:
        raise BadRequest(f"Invalid input received: {name} must be an integer.")
    return number


def body_object(body: Any, key: str) -> dict[str, Any]:
    """The `{key: {...}}` envelope every Nova write uses."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(
            f"Invalid input for field/attribute {key}. Value: {body!r}. '{key}' is a required property"
        )
    value: dict[str, Any] = body[key]
    return value


def reject_unknown(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        names = ", ".join(f"'{k}'" for k in extra)
        plural = "were" if len(extra) > 1 else "was"
        raise BadRequest(
            f"Invalid input for field/attribute {where}. "
            f"Additional properties are not allowed ({names} {plural} unexpected)"
        )


def name_value(value: Any, field: str = "name", max_length: int = 255) -> str:
    """Nova's parameter_types.name: a string of 1-255 characters, no leading/trailing spaces."""
    if not isinstance(value, str):
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value!r}. {value!r} is not of type 'string'"
        )
    if not value or len(value) > max_length:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. "
            f"must be 1-{max_length} characters long"
        )
    if value != value.strip():
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. "
            "leading or trailing whitespace is not allowed"
        )
    if not value.isprintable():
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value!r}. must be printable")
    return value


def int_value(value: Any, field: str, minimum: int, maximum: int = MAX_INT) -> int:
    """An integer (or a string of one) within [minimum, maximum], like Nova's flavor params."""
    if isinstance(value, bool):
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. {value} is not of type 'integer'"
        )
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INTEGER.match(value.strip()):
        number = int(value.strip())
    else:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. "
            f"{value!r} is not of type 'integer', 'string'"
        )
    if number < minimum:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. "
            f"{number} is less than the minimum of {minimum}"
        )
    if number > maximum:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. "
            f"{number} is greater than the maximum of {maximum}"
        )
    return number
