"""Glance v2 response bodies: images, image lists, version documents and JSON schemas."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from kumo.image import service
from kumo.image.models import Image, ImageMember

# Up to v2.5: v2.6 added the interoperable import API and later versions multiple stores,
# neither of which kumo implements. Glance lists the CURRENT version first.
VERSIONS = ("v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0")


def _time(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def image(img: Image) -> dict[str, Any]:
    body: dict[str, Any] = dict(img.properties or {})
    body.update(
        {
            "id": img.id,
            "name": img.name,
            "status": img.status,
            "visibility": img.visibility,
            "owner": img.owner,
            "protected": img.protected,
            "os_hidden": img.os_hidden,
            "container_format": img.container_format,
            "disk_format": img.disk_format,
            "size": img.size,
            "virtual_size": img.virtual_size,
            "checksum": img.checksum,
            "os_hash_algo": img.os_hash_algo,
            "os_hash_value": img.os_hash_value,
            "min_disk": img.min_disk,
            "min_ram": img.min_ram,
            "tags": list(img.tags or []),
            "created_at": _time(img.created_at),
            "updated_at": _time(img.updated_at),
            "self": f"/v2/images/{img.id}",
            "file": f"/v2/images/{img.id}/file",
            "schema": "/v2/schemas/image",
        }
    )
    return body


def image_list(page: service.Page, params: list[tuple[str, str]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "images": [image(img) for img in page.images],
        "schema": "/v2/schemas/images",
        "first": "/v2/images",
    }
    if page.next_marker is not None:
        kept = [(k, v) for k, v in params if k != "marker"]
        body["next"] = "/v2/images?" + urlencode([*kept, ("marker", page.next_marker)])
    return body


def versions(base_url: str) -> dict[str, Any]:
    href = base_url.rstrip("/") + "/image/v2/"
    links = [{"rel": "self", "href": href}]
    return {
        "versions": [
            {"id": v, "status": "CURRENT" if i == 0 else "SUPPORTED", "links": links}
            for i, v in enumerate(VERSIONS)
        ]
    }


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


_UUID_PATTERN = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"


def image_schema() -> dict[str, Any]:
    uuid_pattern = _UUID_PATTERN
    read_only = {"readOnly": True}
    properties: dict[str, Any] = {
        "id": {"type": "string", "pattern": uuid_pattern, "description": "An identifier for the image"},
        "name": _nullable("string", maxLength=service.MAX_STRING),
        "status": {"type": "string", "enum": list(service.STATUSES), **read_only},
        "visibility": {"type": "string", "enum": list(service.VISIBILITIES)},
        "protected": {"type": "boolean"},
        "os_hidden": {"type": "boolean"},
        "owner": _nullable("string", maxLength=service.MAX_OWNER),
        "checksum": _nullable("string", maxLength=32, **read_only),
        "os_hash_algo": _nullable("string", maxLength=64, **read_only),
        "os_hash_value": _nullable("string", maxLength=128, **read_only),
        "size": _nullable("integer", **read_only),
        "virtual_size": _nullable("integer", **read_only),
        "container_format": {"type": ["null", "string"], "enum": [None, *service.CONTAINER_FORMATS]},
        "disk_format": {"type": ["null", "string"], "enum": [None, *service.DISK_FORMATS]},
        "created_at": {"type": "string", "format": "date-time", **read_only},
        "updated_at": {"type": "string", "format": "date-time", **read_only},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": service.MAX_STRING}},
        "min_ram": {"type": "integer", "minimum": 0},
        "min_disk": {"type": "integer", "minimum": 0},
        "self": {"type": "string", **read_only},
        "file": {"type": "string", **read_only},
        "schema": {"type": "string", **read_only},
        "direct_url": {"type": "string", **read_only},
        "locations": {"type": "array", "items": {"type": "object"}, **read_only},
    }
    return {
        "name": "image",
        "properties": properties,
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


# --- members ----------------------------------------------------------------------------------


def member(m: ImageMember) -> dict[str, Any]:
    return {
        "image_id": m.image_id,
        "member_id": m.member_id,
        "status": m.status,
        "created_at": _time(m.created_at),
        "updated_at": _time(m.updated_at),
        "schema": "/v2/schemas/member",
    }


def member_list(members: list[ImageMember]) -> dict[str, Any]:
    return {"members": [member(m) for m in members], "schema": "/v2/schemas/members"}


def member_schema() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {
                "type": "string",
                "pattern": _UUID_PATTERN,
                "description": "An identifier for the image",
            },
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "schema": {"type": "string", "readOnly": True},
            "status": {
                "type": "string",
                "enum": list(service.MEMBER_STATUSES),
                "description": "The status of this image member",
            },
            "updated_at": {
                "type": "string",
                "description": "Date and time of last modification of image member",
            },
        },
    }


def members_schema() -> dict[str, Any]:
    return {
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_schema()},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }


# --- metadata definitions (read-only: kumo defines none) ----------------------------------------


def namespace_list() -> dict[str, Any]:
    return {
        "namespaces": [],
        "first": "/v2/metadefs/namespaces",
        "schema": "/v2/schemas/metadefs/namespaces",
    }


def resource_type_list() -> dict[str, Any]:
    return {"resource_types": []}


_METADEF_TIMES = {
    "created_at": {"type": "string", "format": "date-time", "readOnly": True},
    "updated_at": {"type": "string", "format": "date-time", "readOnly": True},
}
_METADEF_PROPERTY = {
    "name": {"type": "string", "maxLength": 255},
    "title": {"type": "string"},
    "description": {"type": "string"},
    "type": {"type": "string", "enum": ["array", "boolean", "integer", "number", "object", "string", None]},
    "readonly": {"type": "boolean"},
    "default": {"type": ["array", "boolean", "integer", "number", "object", "string", "null"]},
    "enum": {"type": "array"},
    "operators": {"type": "array", "items": {"type": "string"}},
}
_METADEF_ENTITIES: dict[str, dict[str, Any]] = {
    "namespace": {
        "required": ["namespace"],
        "properties": {
            "namespace": {"type": "string", "maxLength": 80, "description": "The unique namespace text."},
            "display_name": {"type": "string", "maxLength": 80},
            "description": {"type": "string", "maxLength": 500},
            "visibility": {"type": "string", "enum": ["public", "private"]},
            "protected": {"type": "boolean"},
            "owner": {"type": "string", "maxLength": 255},
            "resource_type_associations": {"type": "array", "items": {"type": "object"}},
            "properties": {"type": "object"},
            "objects": {"type": "array", "items": {"type": "object"}},
            "tags": {"type": "array", "items": {"type": "object"}},
            "self": {"type": "string"},
            "schema": {"type": "string"},
            **_METADEF_TIMES,
        },
    },
    "resource_type": {
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "maxLength": 80},
            "prefix": {"type": "string", "maxLength": 80},
            "properties_target": {"type": "string", "maxLength": 80},
            **_METADEF_TIMES,
        },
    },
    "object": {
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "maxLength": 255},
            "description": {"type": "string"},
            "required": {"type": "array", "items": {"type": "string"}},
            "properties": {"type": "object"},
            "schema": {"type": "string", "readOnly": True},
            "self": {"type": "string", "readOnly": True},
            **_METADEF_TIMES,
        },
    },
    "property": {"required": ["name", "title", "type"], "properties": dict(_METADEF_PROPERTY)},
    "tag": {
        "required": ["name"],
        "properties": {"name": {"type": "string", "maxLength": 255}, **_METADEF_TIMES},
    },
}
# The collection schema of each entity, under the name Glance gives it.
_METADEF_COLLECTIONS = {
    "namespaces": "namespace",
    "resource_types": "resource_type",
    "objects": "object",
    "properties": "property",
    "tags": "tag",
}


# The `name` Glance gives a schema where it is not the path's: the resource type schemas
# describe a namespace's associations with resource types.
_METADEF_SCHEMA_NAMES = {
    "resource_type": "resource_type_association",
    "resource_types": "resource_type_associations",
}


def metadef_schema(name: str) -> dict[str, Any] | None:
    """Glance's schema of a metadata-definition entity or collection, or None for an unknown name."""
    if name in _METADEF_ENTITIES:
        entity = _METADEF_ENTITIES[name]
        return {"name": _METADEF_SCHEMA_NAMES.get(name, name), "additionalProperties": False, **entity}
    if name in _METADEF_COLLECTIONS:
        item = metadef_schema(_METADEF_COLLECTIONS[name])
        key = "resource_type_associations" if name == "resource_types" else name
        return {
            "name": _METADEF_SCHEMA_NAMES.get(name, name),
            "properties": {
                key: {"type": "array", "items": item},
                "first": {"type": "string"},
                "next": {"type": "string"},
                "schema": {"type": "string"},
            },
            "links": [
                {"rel": "first", "href": "{first}"},
                {"rel": "next", "href": "{next}"},
                {"rel": "describedby", "href": "{schema}"},
            ],
        }
    return None
