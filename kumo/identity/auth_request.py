"""The shape of a Keystone login body (POST /v3/auth/tokens), checked before anything is looked
up: Keystone's own request schema (keystone/auth/schema.py, token_issue) and its extra rules.

Invariant: `validated(body)` returns the `auth` object only when every field the login reads
has the JSON type Keystone's schema gives it (names, ids, passwords, methods: strings; the
objects around them: objects); anything else is a BadRequest (400), never a database query.
"""

from __future__ import annotations

from typing import Any

from kumo.errors import BadRequest

Shape = dict[str, Any]  # {"type": ..., "properties": {...}, "items": ..., "required": [...]}

_STRING: Shape = {"type": str}
_REF: Shape = {"type": dict, "properties": {"id": _STRING, "name": _STRING}}  # a domain
_NAMED: Shape = {"type": dict, "properties": {"id": _STRING, "name": _STRING, "domain": _REF}}
_AUTH: Shape = {
    "type": dict,
    "required": ["identity"],
    "properties": {
        "identity": {
            "type": dict,
            "required": ["methods"],
            "properties": {
                "methods": {"type": list, "items": _STRING},
                "password": {
                    "type": dict,
                    "properties": {
                        "user": {
                            "type": dict,
                            "properties": {**_NAMED["properties"], "password": _STRING},
                        }
                    },
                },
                "token": {"type": dict, "required": ["id"], "properties": {"id": _STRING}},
                "application_credential": {
                    "type": dict,
                    "required": ["secret"],
                    "properties": {"id": _STRING, "name": _STRING, "secret": _STRING, "user": _NAMED},
                },
            },
        },
        "scope": {
            "type": (dict, str),
            "properties": {
                "project": _NAMED,
                "domain": _REF,
                "OS-TRUST:trust": {"type": dict, "properties": {"id": _STRING}},
                "system": {"type": dict, "properties": {"all": {"type": bool}}},
            },
        },
    },
}
_TYPE_NAMES = {dict: "object", list: "array", str: "string", bool: "boolean"}
# Objects that must name what they refer to (Keystone's checks after its schema).
_ID_OR_NAME = (
    ("identity", "password", "user"),
    ("identity", "password", "user", "domain"),
    ("identity", "application_credential", "user"),
    ("identity", "application_credential", "user", "domain"),
    ("scope", "project"),
    ("scope", "project", "domain"),
    ("scope", "domain"),
)


def validated(body: Any) -> dict[str, Any]:
    """The body's `auth` object, once its shape is one Keystone accepts."""
    if not isinstance(body, dict) or not isinstance(body.get("auth"), dict):
        raise BadRequest("Expecting to find auth in request body.")
    auth: dict[str, Any] = body["auth"]
    _check(auth, _AUTH, "auth")
    for path in _ID_OR_NAME:
        ref = _find(auth, path)
        if isinstance(ref, dict) and "id" not in ref and "name" not in ref:
            raise BadRequest(f"Invalid input for field {'/'.join(path)}: id or name must be present.")
    return auth


def _check(value: Any, shape: Shape, where: str) -> None:
    expected = shape["type"]
    if not isinstance(value, expected):
        types = expected if isinstance(expected, tuple) else (expected,)
        names = " or ".join(_TYPE_NAMES[t] for t in types)
        raise BadRequest(f"Invalid input for field {where}: expected {names}.")
    if isinstance(value, dict):
        for key in shape.get("required", ()):
            if key not in value:
                raise BadRequest(f"Invalid input for field {where}: '{key}' is a required property.")
        for key, inner in shape.get("properties", {}).items():
            if key in value:
                _check(value[key], inner, f"{where}/{key}")
    elif isinstance(value, list) and "items" in shape:
        for item in value:
            _check(item, shape["items"], f"{where}/item")


def _find(auth: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = auth
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
