"""JSON Schema of the Glance v2 request bodies (`routes.py`), for the OpenAPI document: image
create (core attributes plus string extra properties), the JSON-patch of an image update, and
the raw bytes of an upload."""

from __future__ import annotations

from kumo.api.openapi import BOOLEAN, STRING, UUID, Schema, json_body, nullable, query
from kumo.image import service
from kumo.validation import MAX_INT

_TEXT: Schema = {"type": "string", "maxLength": service.MAX_STRING}

IMAGE_CREATE: Schema = {
    "type": "object",
    "properties": {
        "id": UUID,
        "name": nullable(_TEXT),
        "visibility": {"type": "string", "enum": list(service.VISIBILITIES)},
        "protected": BOOLEAN,
        "os_hidden": BOOLEAN,
        "owner": nullable({"type": "string", "maxLength": service.MAX_OWNER}),
        "container_format": nullable({"type": "string", "enum": list(service.CONTAINER_FORMATS)}),
        "disk_format": nullable({"type": "string", "enum": list(service.DISK_FORMATS)}),
        "tags": {"type": "array", "items": _TEXT, "maxItems": service.MAX_TAGS},
        "min_ram": {"type": "integer", "minimum": 0, "maximum": MAX_INT},
        "min_disk": {"type": "integer", "minimum": 0, "maximum": MAX_INT},
    },
    "additionalProperties": {"type": "string", "maxLength": service.MAX_PROPERTY_VALUE},
}

MEMBER_CREATE: Schema = {
    "type": "object",
    "properties": {"member": {"type": "string", "minLength": 1, "maxLength": service.MAX_OWNER}},
    "required": ["member"],
}
MEMBER_UPDATE: Schema = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": list(service.MEMBER_STATUSES)}},
    "required": ["status"],
}

_PATCH_OP: Schema = {
    "type": "object",
    "properties": {
        "op": {"type": "string", "enum": ["add", "replace", "remove"]},
        "path": {"type": "string", "pattern": "^/"},
        "value": {},
    },
    "required": ["op", "path"],
    "additionalProperties": False,
}
IMAGE_PATCH_BODY = json_body(
    {"type": "array", "items": _PATCH_OP}, media_type="application/openstack-images-v2.1-json-patch"
)
IMAGE_DATA_BODY = json_body({"type": "string", "format": "binary"}, media_type="application/octet-stream")

# GET /v2/images reads its query string by hand (unknown keys filter on extra properties).
IMAGE_LIST_QUERY: Schema = query(
    ("limit", {"type": "integer", "minimum": 0}),
    ("marker", STRING),
    ("name", STRING),
    ("visibility", {"type": "string", "enum": [*service.VISIBILITIES, "all"]}),
    ("status", STRING),
    ("owner", STRING),
    ("container_format", STRING),
    ("disk_format", STRING),
    ("size_min", {"type": "integer", "minimum": 0}),
    ("size_max", {"type": "integer", "minimum": 0}),
    ("size", {"type": "integer", "minimum": 0}),
    ("virtual_size", {"type": "integer", "minimum": 0}),
    ("min_ram", {"type": "integer", "minimum": 0}),
    ("min_disk", {"type": "integer", "minimum": 0}),
    ("checksum", STRING),
    ("os_hash_value", STRING),
    ("member_status", {"type": "string", "enum": [*service.MEMBER_STATUSES, "all"]}),
    ("protected", BOOLEAN),
    ("os_hidden", BOOLEAN),
    ("created_at", STRING),
    ("updated_at", STRING),
    ("tag", STRING),
    ("sort_key", STRING),
    ("sort_dir", {"type": "string", "enum": ["asc", "desc"]}),
    ("sort", STRING),
)
