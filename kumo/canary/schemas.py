"""JSON Schema of the os-kumo-canaries report body (see `routes.py`), for the OpenAPI document."""

from __future__ import annotations

from kumo.api.openapi import Schema, obj
from kumo.canary.policy import SCOPES
from kumo.canary.service import MAX_STEPS

_TEXT = {"type": ["string", "null"]}
_STEP = obj(
    {
        "step": {"type": "string", "minLength": 1, "maxLength": 32},
        "ok": {"type": "boolean"},
        "request_id": _TEXT,
        "seconds": {"type": "number", "minimum": 0},
        "detail": _TEXT,
    },
    ["step", "ok"],
)
CANARY_REPORT: Schema = obj(
    {
        "canary": obj(
            {
                "scope": {"type": "string", "enum": list(SCOPES)},
                "target": {"type": "string", "minLength": 1, "maxLength": 255},
                "availability_zone": _TEXT,
                "host": _TEXT,
                "ok": {"type": "boolean"},
                "failed_step": _TEXT,
                "error": _TEXT,
                "steps": {"type": "array", "items": _STEP, "maxItems": MAX_STEPS},
                "server_id": _TEXT,
                "started_at": {"type": "string", "format": "date-time"},
                "finished_at": {"type": "string", "format": "date-time"},
            },
            ["scope", "target", "ok", "steps", "started_at", "finished_at"],
        )
    },
    ["canary"],
)
