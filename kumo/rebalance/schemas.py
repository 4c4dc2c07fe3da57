"""JSON Schema of the Watcher request bodies kumo accepts (`routes.py`), for the OpenAPI
document: audit template and audit creation, and the RFC 6902 patches of an audit's, an action
plan's and an action's state. Field names follow Watcher's API reference."""

from __future__ import annotations

from kumo.api.openapi import STRING, Schema, nullable, obj

_NAME: Schema = {"type": "string", "minLength": 1, "maxLength": 63}
_REF: Schema = nullable({"type": "string", "maxLength": 63})

AUDIT_TEMPLATE_CREATE: Schema = obj(
    {
        "name": _NAME,
        "description": nullable({"type": "string", "maxLength": 255}),
        "goal": _REF,
        "strategy": _REF,
        "scope": {"type": "array"},
    },
    ["name"],
)
AUDIT_CREATE: Schema = obj(
    {
        "name": nullable(_NAME),
        "audit_type": {"type": "string", "enum": ["ONESHOT", "CONTINUOUS", "EVENT"]},
        "audit_template_uuid": _REF,
        "goal": _REF,
        "strategy": _REF,
        "parameters": {"type": "object"},
        "interval": nullable({"anyOf": [{"type": "string", "maxLength": 63}, {"type": "integer"}]}),
        "auto_trigger": {"type": "boolean"},
        "scope": {"type": "array"},
        "start_time": nullable(STRING),
        "end_time": nullable(STRING),
        "force": {"type": "boolean"},
        "hostname": nullable(STRING),
    },
)
STATE_PATCH: Schema = {
    "type": "array",
    "items": obj(
        {"op": {"type": "string", "enum": ["replace", "add"]}, "path": STRING, "value": {}},
        ["op", "path"],
    ),
}
