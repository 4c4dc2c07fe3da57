"""Query-string and body value parsing with Nova's 400 messages (shared by the compute routes)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kumo.errors import BadRequest
from kumo.validation import MAX_INT, int_text

MAX_LIMIT = 1000

_HOST = re.compile(r"^[a-zA-Z0-9-._]{1,255}$")
# A server's hostname (2.90): 2-63 letters, digits and '-', '-' neither first nor last; from
# 2.94 Nova's fqdn type: 1-255 letters, digits, '-', '.' and '_'.
_HOSTNAME = re.compile(r"^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$")
_FQDN = re.compile(r"^[a-zA-Z0-9-._]*$")
_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}


@dataclass(frozen=True)
class Page:
    limit: int | None
    marker: str | None


def page(limit: str | None, marker: str | None, maximum: int = MAX_LIMIT) -> Page:
    """`limit`/`marker` as Nova's common.get_limit_and_marker reads them; a limit above
    `maximum` is `maximum` (so it never reaches the database beyond its integer range)."""
    value = None
    if limit is not None:
        value = int_text(limit)
        if value is None:
            raise BadRequest("limit param must be an integer")
        if value < 0:
            raise BadRequest("limit param must be positive")
        value = min(value, maximum)
    return Page(limit=value, marker=marker or None)


def time_param(query: Mapping[str, str], name: str) -> dt.datetime | None:
    """A time of the query string (changes-since, changes-before, created_at…) as naive UTC,
    None when absent; a time that is none (or leaves years 1-9999 in UTC) is a 400."""
    if name not in query:
        return None
    try:
        return (
            dt.datetime.fromisoformat(query[name].replace("Z", "+00:00"))
            .astimezone(dt.UTC)
            .replace(tzinfo=None)
        )
    except (ValueError, OverflowError):
        raise BadRequest(f"Invalid {name} value") from None


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
    number = int_text(value, 0, MAX_INT)
    if number is None:
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
    """An integer (or a string of one, `kumo.validation.int_text`: no spaces, signs but one
    "-", or non-ASCII digits) within [minimum, maximum], like Nova's flavor params."""
    if isinstance(value, bool):
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. {value} is not of type 'integer'"
        )
    number = value if isinstance(value, int) else int_text(value)
    shown = f"{value[:40]}..." if isinstance(value, str) and len(value) > 40 else value
    if number is None:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {shown}. "
            f"{shown!r} is not of type 'integer', 'string'"
        )
    if number < minimum:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {shown}. "
            f"{shown} is less than the minimum of {minimum}"
        )
    if number > maximum:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {shown}. "
            f"{shown} is greater than the maximum of {maximum}"
        )
    return number


def optional_name(value: Any, field: str) -> str | None:
    """A name-like field that may be absent (None) or empty (taken as absent)."""
    if value is None or value == "":
        return None
    return name_value(value, field)


def string_value(value: Any, field: str, max_length: int = 255, printable: bool = True) -> str:
    """A string of at most `max_length` characters (empty allowed), printable ones unless
    `printable` is False (free text such as descriptions and passwords)."""
    if not isinstance(value, str):
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value!r}. {value!r} is not of type 'string'"
        )
    if len(value) > max_length:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value[:40]}... is longer than {max_length}"
        )
    if printable and not value.isprintable():
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value!r}. must be printable")
    return value


def host_value(value: Any, field: str = "host") -> str | None:
    """A host name a move or a filter names (Nova's hostname pattern), or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not _HOST.fullmatch(value):
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value!r}. "
            "Does not match pattern '^[a-zA-Z0-9-._]*$' or is not of type 'string', 'null'"
        )
    return value


def hostname_value(value: Any, fqdn: bool) -> str:
    """A hostname given at create, update or rebuild (2.90; `fqdn`: 2.94's longer names)."""
    pattern, longest = (_FQDN, 255) if fqdn else (_HOSTNAME, 63)
    if not isinstance(value, str) or not value or len(value) > longest or not pattern.fullmatch(value):
        raise BadRequest(
            f"Invalid input for field/attribute hostname. Value: {value!r}. "
            f"Does not match pattern '{pattern.pattern}' (at most {longest} characters)"
        )
    return value


def count_value(value: Any, field: str, cap: int) -> int:
    """`min_count`/`max_count`: a positive integer or a string of digits (never a float), at
    most `cap` (setting max_servers_per_request), so nothing loops over an unbounded count."""
    return int_value(value, field, 1, cap)


def db_int(value: str) -> int | None:
    """A path or query id that names an INTEGER primary key: its value, or None when it is no
    integer or beyond the column (so the lookup finds nothing instead of overflowing)."""
    return int_text(value, 0, MAX_INT)
