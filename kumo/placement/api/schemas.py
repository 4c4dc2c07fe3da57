"""JSON Schema of the Placement request bodies (`routes.py`), for the OpenAPI document. Field
names follow the Placement API reference; bodies are described at the newest microversion
(allocations in the 1.28+ dict shape with consumer generations and 1.34 mappings)."""

from __future__ import annotations

from kumo.api.openapi import STRING, UUID, Schema, nullable, obj, query
from kumo.validation import MAX_INT

RESOURCE_CLASS: Schema = {"type": "string", "pattern": "^[A-Z0-9_]+$", "maxLength": 255}
GENERATION: Schema = {"type": "integer", "minimum": 0}
_AMOUNT: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_INT}
_INT: Schema = {"type": "integer", "maximum": MAX_INT}

_INVENTORY_FIELDS: Schema = {
    "total": _AMOUNT,
    "reserved": {**_INT, "minimum": 0},
    "min_unit": _AMOUNT,
    "max_unit": _AMOUNT,
    "step_size": _AMOUNT,
    "allocation_ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 3.40282e38},
}
INVENTORY: Schema = obj(_INVENTORY_FIELDS, ["total"])
INVENTORIES: Schema = {"type": "object", "propertyNames": RESOURCE_CLASS, "additionalProperties": INVENTORY}

PROVIDER_CREATE: Schema = obj(
    {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "uuid": UUID,
        "parent_provider_uuid": nullable(UUID),
    },
    ["name"],
)
PROVIDER_UPDATE: Schema = obj(
    {"name": {"type": "string", "minLength": 1, "maxLength": 200}, "parent_provider_uuid": nullable(UUID)},
    ["name"],
)
INVENTORIES_SET: Schema = obj(
    {"inventories": INVENTORIES, "resource_provider_generation": GENERATION},
    ["inventories", "resource_provider_generation"],
)
INVENTORY_CREATE: Schema = obj(
    {**_INVENTORY_FIELDS, "resource_class": RESOURCE_CLASS, "resource_provider_generation": GENERATION},
    ["total", "resource_class", "resource_provider_generation"],
)
INVENTORY_UPDATE: Schema = obj(
    {**_INVENTORY_FIELDS, "resource_provider_generation": GENERATION},
    ["total", "resource_provider_generation"],
)
AGGREGATES_SET: Schema = obj(
    {
        "aggregates": {"type": "array", "items": UUID, "uniqueItems": True},
        "resource_provider_generation": GENERATION,
    },
    ["aggregates", "resource_provider_generation"],
)
TRAITS_SET: Schema = obj(
    {
        "traits": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 255},
            "uniqueItems": True,
        },
        "resource_provider_generation": GENERATION,
    },
    ["traits", "resource_provider_generation"],
)
RESOURCE_CLASS_CREATE: Schema = obj(
    {"name": {"type": "string", "pattern": "^CUSTOM_[A-Z0-9_]+$", "maxLength": 255}}, ["name"]
)

_RESOURCES: Schema = {
    "type": "object",
    "minProperties": 1,
    "propertyNames": RESOURCE_CLASS,
    "additionalProperties": _AMOUNT,
}
ALLOCATIONS_PUT: Schema = obj(
    {
        "allocations": {
            "type": "object",
            "propertyNames": UUID,
            "additionalProperties": obj({"resources": _RESOURCES, "generation": GENERATION}, ["resources"]),
        },
        "project_id": {"type": "string", "minLength": 1, "maxLength": 255},
        "user_id": {"type": "string", "minLength": 1, "maxLength": 255},
        "consumer_generation": nullable(GENERATION),
        "mappings": {"type": "object", "additionalProperties": {"type": "array", "items": UUID}},
    },
    ["allocations", "project_id", "user_id", "consumer_generation"],
)
ALLOCATIONS_POST: Schema = {
    "type": "object",
    "minProperties": 1,
    "propertyNames": UUID,
    "additionalProperties": ALLOCATIONS_PUT,
}
RESHAPE: Schema = obj(
    {
        "inventories": {
            "type": "object",
            "propertyNames": UUID,
            "additionalProperties": obj(
                {"inventories": INVENTORIES, "resource_provider_generation": GENERATION},
                ["inventories", "resource_provider_generation"],
            ),
        },
        "allocations": ALLOCATIONS_POST,
    },
    ["inventories", "allocations"],
)

# Query strings read by hand (`params.check_keys` refuses unknown keys); values in Placement's syntax.
_RESOURCES_QUERY: Schema = {"type": "string", "pattern": "^[A-Z0-9_]+:[0-9]+(,[A-Z0-9_]+:[0-9]+)*$"}
_TRAITS_QUERY: Schema = {"type": "string", "pattern": "^!?[A-Z0-9_]+(,!?[A-Z0-9_]+)*$"}
_MEMBER_OF: Schema = {"type": "string"}
PROVIDER_LIST_QUERY: Schema = query(
    ("name", STRING),
    ("uuid", UUID),
    ("member_of", _MEMBER_OF),
    ("resources", _RESOURCES_QUERY),
    ("in_tree", UUID),
    ("required", _TRAITS_QUERY),
)
USAGES_QUERY: Schema = query(("project_id", STRING), ("user_id", STRING))
TRAIT_LIST_QUERY: Schema = query(("name", STRING), ("associated", STRING))
CANDIDATES_QUERY: Schema = query(
    ("resources", _RESOURCES_QUERY),
    ("required", _TRAITS_QUERY),
    ("member_of", _MEMBER_OF),
    ("in_tree", UUID),
    ("limit", {"type": "integer", "minimum": 1}),
    ("group_policy", {"type": "string", "enum": ["none", "isolate"]}),
    ("root_required", _TRAITS_QUERY),
)
