"""JSON Schema of the precache extension's request body (for /openapi.json; the service's
`parse` is what checks it)."""

from __future__ import annotations

from typing import Any

_UUID = {"type": "string", "format": "uuid"}

PRECACHE_JOB: dict[str, Any] = {
    "type": "object",
    "properties": {
        "image_ids": {"type": "array", "items": _UUID, "minItems": 1, "uniqueItems": True},
        "aggregate_id": {"type": ["integer", "string"]},
        "hosts": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
        "availability_zone": {"type": "string", "minLength": 1},
    },
    "required": ["image_ids"],
    "additionalProperties": False,
}
