"""JSON Schema of the Ironic request bodies kumo accepts (`routes.py`), for the OpenAPI
document: node and port create, the RFC 6902 patch of a node or a port, provision and power state changes and
maintenance. Field names follow the Ironic API reference."""

from __future__ import annotations

from kumo.api.openapi import STRING, UUID, Schema, nullable, obj, query
from kumo.baremetal import hosts, states
from kumo.baremetal.drivers import DRIVERS

_NAME: Schema = {"type": "string", "pattern": "^[A-Za-z0-9\\-._~]+$", "maxLength": 255}
_TEXT: Schema = nullable({"type": "string", "maxLength": 255})
_DICT: Schema = {"type": "object"}

NODE_CREATE: Schema = obj(
    {
        "driver": {"type": "string", "enum": list(DRIVERS)},
        "uuid": UUID,
        "name": nullable(_NAME),
        "driver_info": _DICT,
        "properties": _DICT,
        "extra": _DICT,
        "instance_info": _DICT,
        "resource_class": _TEXT,
        "description": nullable({"type": "string", "maxLength": 4096}),
        "owner": _TEXT,
        "lessee": _TEXT,
        "chassis_uuid": nullable(UUID),
        "conductor_group": _TEXT,
        "automated_clean": nullable({"type": "boolean"}),
        "network_data": _DICT,
        "shard": _TEXT,
        "parent_node": _TEXT,
        "disable_power_off": {"type": "boolean"},
        "instance_name": _TEXT,
        **{f"{iface}_interface": _TEXT for iface in hosts.INTERFACES},
    },
    ["driver"],
)
_MAC: Schema = {"type": "string", "maxLength": 17}
PORT_CREATE: Schema = obj(
    {
        "address": _MAC,
        "node_uuid": UUID,
        "uuid": UUID,
        "extra": _DICT,
        "pxe_enabled": {"type": "boolean"},
        "local_link_connection": _DICT,
        "physical_network": nullable({"type": "string", "maxLength": 64}),
        "portgroup_uuid": {"type": "null"},
        "is_smartnic": {"type": "boolean", "enum": [False]},
    },
    ["address", "node_uuid"],
)
NODE_PATCH: Schema = {
    "type": "array",
    "minItems": 1,
    "items": obj(
        {"op": {"type": "string", "enum": ["add", "replace", "remove"]}, "path": STRING, "value": {}},
        ["op", "path"],
    ),
}
PORT_PATCH: Schema = NODE_PATCH
PROVISION: Schema = obj(
    {
        "target": {"type": "string", "enum": sorted(states.API_VERBS)},
        "configdrive": {"anyOf": [STRING, _DICT]},
        "clean_steps": {"type": "array", "items": _DICT},
        "deploy_steps": {"type": "array", "items": _DICT},
    },
    ["target"],
)
POWER: Schema = obj(
    {
        "target": {"type": "string", "enum": sorted(states.POWER_TARGETS)},
        "timeout": {"type": "integer", "minimum": 1},
    },
    ["target"],
)
MAINTENANCE: Schema = obj({"reason": STRING})

# GET /v1/nodes[/detail] filters, read from the query string by hand (`routes._list`).
NODE_LIST_QUERY: Schema = query(
    ("limit", {"type": "integer", "minimum": 0}),
    ("marker", STRING),
    ("associated", {"type": "boolean"}),
    ("maintenance", {"type": "boolean"}),
    ("provision_state", STRING),
    ("driver", STRING),
    ("resource_class", STRING),
    ("fault", STRING),
    ("owner", STRING),
    ("lessee", STRING),
    ("instance_uuid", STRING),
    ("sort_key", STRING),
    ("sort_dir", {"type": "string", "enum": ["asc", "desc"]}),
)

# GET /v1/ports[/detail] and /v1/nodes/{node}/ports[/detail], read by hand (`routes._port_list`).
PORT_LIST_QUERY: Schema = query(
    ("node", STRING),
    ("node_uuid", STRING),
    ("address", STRING),
    ("fields", STRING),
    ("detail", {"type": "boolean"}),
    ("limit", {"type": "integer", "minimum": 0}),
    ("marker", STRING),
    ("sort_key", {"type": "string", "enum": ["id", "uuid", "address", "created_at", "updated_at"]}),
    ("sort_dir", {"type": "string", "enum": ["asc", "desc"]}),
)
