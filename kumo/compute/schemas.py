"""JSON Schema of the Nova v2.1 request bodies kumo accepts, for the OpenAPI document
(`kumo/api/openapi.py`). Field names follow the Nova API reference; the parsing code beside
each (`routes/servers.py`, `flavors.py`, `keypairs.py`, ...) stays the authority. Bodies are
described at the newest microversion kumo serves (`MAX_VERSION`)."""

from __future__ import annotations

from kumo.api.openapi import BOOLEAN, NAME, STRING, UUID, Schema, nullable, obj, one_action, query, string_map
from kumo.compute import aggregates, hosts, quotas, server_groups
from kumo.compute.microversion import max_version
from kumo.config import Settings

# Nova's parameter_types.positive_integer / non_negative_integer: an integer or its digits.
POSITIVE: Schema = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^[0-9]+$"}]}
NON_NEGATIVE: Schema = {
    "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+$"}]
}
QUOTA_LIMIT: Schema = {
    "anyOf": [{"type": "integer", "minimum": -1}, {"type": "string", "pattern": "^-?[0-9]+$"}]
}
# min_count/max_count: at most setting max_servers_per_request; the document states its default
# (an operator who raises it accepts more than the document says).
MAX_COUNT = int(Settings.model_fields["max_servers_per_request"].default)
COUNT: Schema = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
        {"type": "string", "pattern": "^[0-9]+$"},
    ],
    "description": f"1 to max_servers_per_request (default {MAX_COUNT})",
}
# Nova's hostname pattern (params.host_value): a host a move names.
HOST: Schema = {"type": "string", "pattern": "^[a-zA-Z0-9._-]{1,255}$"}
# A server's hostname at 2.94 (params.hostname_value): Nova's fqdn type.
FQDN: Schema = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9._-]*$"}
# A scheduler hint naming servers: one uuid or a list of them (routes/servers.py `_hints`).
SERVERS_HINT: Schema = {"anyOf": [UUID, {"type": "array", "items": UUID}]}
SCHEDULER_HINTS: Schema = obj(
    {"group": UUID, "same_host": SERVERS_HINT, "different_host": SERVERS_HINT}, additional=True
)
METADATA: Schema = string_map({"type": "string", "maxLength": 255})
DESCRIPTION: Schema = nullable({"type": "string", "maxLength": 255})
# Server tags (kumo.compute.tags): at most 50 of 1-60 characters, no ',' or '/'.
TAG: Schema = {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"}
TAGS: Schema = {"type": "array", "maxItems": 50, "items": TAG}

SERVER_CREATE: Schema = {
    "type": "object",
    "properties": {
        "server": obj(
            {
                "name": NAME,
                "imageRef": STRING,
                "flavorRef": STRING,
                "availability_zone": STRING,
                "metadata": METADATA,
                "key_name": STRING,
                "user_data": STRING,
                "description": DESCRIPTION,
                "min_count": COUNT,
                "max_count": COUNT,
                "accessIPv4": {"type": "string", "format": "ipv4"},
                "accessIPv6": {"type": "string", "format": "ipv6"},
                "config_drive": BOOLEAN,
                "tags": TAGS,
                "return_reservation_id": BOOLEAN,
                "hostname": FQDN,
                "host": HOST,
                "hypervisor_hostname": HOST,
                "networks": {
                    "anyOf": [
                        {"type": "string", "enum": ["auto", "none"]},
                        {"type": "array", "items": {"type": "object"}},
                    ]
                },
                "security_groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                        "required": ["name"],
                    },
                },
                "block_device_mapping_v2": {"type": "array", "items": {"type": "object"}},
                "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
            },
            ["name", "flavorRef"],
        ),
        "os:scheduler_hints": SCHEDULER_HINTS,
        "OS-SCH-HNT:scheduler_hints": SCHEDULER_HINTS,  # the older spelling, read when the first is absent
    },
    "required": ["server"],
    "additionalProperties": False,
}

SERVER_UPDATE: Schema = obj(
    {
        "server": obj(
            {
                "name": NAME,
                "description": DESCRIPTION,
                "accessIPv4": {"type": "string", "format": "ipv4"},
                "accessIPv6": {"type": "string", "format": "ipv6"},
                "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
                "hostname": FQDN,
            }
        )
    },
    ["server"],
)

SERVER_TAGS: Schema = obj({"tags": TAGS}, ["tags"])
VOLUME_ATTACHMENT: Schema = obj(
    {
        "volumeAttachment": obj(
            {
                "volumeId": UUID,
                "device": nullable(STRING),
                "tag": TAG,
                "delete_on_termination": BOOLEAN,
            },
            ["volumeId"],
        )
    },
    ["volumeAttachment"],
)
AGGREGATE_IMAGES: Schema = obj(
    {"cache": {"type": "array", "minItems": 1, "items": obj({"id": UUID}, ["id"]), "uniqueItems": True}},
    ["cache"],
)

METADATA_SET: Schema = obj({"metadata": METADATA}, ["metadata"])
METADATA_ITEM: Schema = obj(
    {"meta": {**METADATA, "minProperties": 1, "maxProperties": 1}},
    ["meta"],
)

NO_ARGS: Schema = {"type": "null"}
SERVER_ACTION: Schema = one_action(
    {
        "os-start": NO_ARGS,
        "os-stop": NO_ARGS,
        "reboot": obj({"type": {"type": "string", "enum": ["SOFT", "HARD"]}}, ["type"]),
        "migrate": nullable(obj({"host": nullable(HOST)})),
        "os-migrateLive": obj(
            {
                "host": nullable(HOST),
                "block_migration": {"anyOf": [BOOLEAN, {"type": "string", "enum": ["auto"]}]},
                "force": BOOLEAN,
            },
            ["host"],
        ),
        "confirmResize": NO_ARGS,
        "revertResize": NO_ARGS,
        "lock": nullable(obj({"locked_reason": {"type": "string", "maxLength": 255}})),
        "unlock": NO_ARGS,
        "rebuild": obj(
            {
                "imageRef": STRING,
                "name": NAME,
                "adminPass": STRING,
                "metadata": METADATA,
                "description": DESCRIPTION,
                "preserve_ephemeral": BOOLEAN,
                "key_name": nullable(STRING),
                "user_data": nullable(STRING),
                "hostname": FQDN,
            },
            ["imageRef"],
        ),
        "os-getConsoleOutput": obj(
            {"length": nullable({"anyOf": [{"type": "integer", "minimum": -1}, {"type": "string"}]})}
        ),
        # Operating a dead host (kumo/compute/evacuate.py, server_ops): bodies at 2.29+.
        "os-resetState": obj({"state": {"type": "string", "enum": ["active", "error"]}}, ["state"]),
        "forceDelete": NO_ARGS,
        "restore": NO_ARGS,
        "evacuate": obj({"host": HOST, "adminPass": STRING}),  # force: 2.29-2.67 only
        # A server's security groups (kumo/compute/interfaces.py): every port of it.
        "addSecurityGroup": obj({"name": {"type": "string", "minLength": 1, "maxLength": 255}}, ["name"]),
        "removeSecurityGroup": obj({"name": {"type": "string", "minLength": 1, "maxLength": 255}}, ["name"]),
        # Day-2 actions (kumo/compute/day2.py).
        "pause": NO_ARGS,
        "unpause": NO_ARGS,
        "suspend": NO_ARGS,
        "resume": NO_ARGS,
        "unrescue": NO_ARGS,
        "trigger_crash_dump": NO_ARGS,
        "rescue": nullable(obj({"adminPass": STRING, "rescue_image_ref": STRING})),
        "resize": obj(
            {
                "flavorRef": {"anyOf": [STRING, {"type": "integer"}]},
                "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
            },
            ["flavorRef"],
        ),
        # Snapshots and shelving (kumo/compute/shelving.py), the serial console (serial_console.py).
        "createImage": obj(
            {
                "name": {"type": "string", "minLength": 1, "maxLength": 255},
                "metadata": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "maxLength": 255},
                    "propertyNames": {"minLength": 1, "maxLength": 255},
                },
            },
            ["name"],
        ),
        "createBackup": obj(
            {
                "name": {"type": "string", "minLength": 1, "maxLength": 255},
                "backup_type": {"type": "string"},
                "rotation": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 0},
                "metadata": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "maxLength": 255},
                    "propertyNames": {"minLength": 1, "maxLength": 255},
                },
            },
            ["name", "backup_type", "rotation"],
        ),
        "shelve": nullable(obj({})),
        "shelveOffload": nullable(obj({})),
        "unshelve": nullable(obj({"availability_zone": nullable(STRING), "host": HOST})),  # 2.91's
        "os-getSerialConsole": obj({"type": {"type": "string", "enum": ["serial"]}}, ["type"]),
    }
)
REMOTE_CONSOLE: Schema = obj(
    {
        "remote_console": obj(
            {
                "protocol": {"type": "string", "enum": ["serial"]},
                "type": {"type": "string", "enum": ["serial"]},
            },
            ["protocol", "type"],
        )
    },
    ["remote_console"],
)
INTERFACE_ATTACH: Schema = obj(
    {
        "interfaceAttachment": obj(
            {
                "port_id": UUID,
                "net_id": UUID,
                "fixed_ips": {
                    "type": "array",
                    "maxItems": 1,
                    "items": obj({"ip_address": {"type": "string", "format": "ipv4"}}, ["ip_address"]),
                },
            }
        )
    },
    ["interfaceAttachment"],
)

FLAVOR_CREATE: Schema = obj(
    {
        "flavor": obj(
            {
                "name": NAME,
                "id": nullable(
                    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9._-]+$"}
                ),
                "ram": POSITIVE,
                "vcpus": POSITIVE,
                "disk": NON_NEGATIVE,
                "OS-FLV-EXT-DATA:ephemeral": NON_NEGATIVE,
                "swap": NON_NEGATIVE,
                "rxtx_factor": {"type": "number", "exclusiveMinimum": 0, "maximum": 3.40282e38},
                "os-flavor-access:is_public": BOOLEAN,
                "description": nullable({"type": "string", "maxLength": 65535}),
            },
            ["name", "ram", "vcpus", "disk"],
        )
    },
    ["flavor"],
)
FLAVOR_UPDATE: Schema = obj(
    {"flavor": obj({"description": nullable({"type": "string", "maxLength": 65535})}, ["description"])},
    ["flavor"],
)
_SPEC_KEY: Schema = {"type": "string", "pattern": "^[a-zA-Z0-9-_:. ]{1,255}$"}
EXTRA_SPECS: Schema = obj(
    {
        "extra_specs": {
            "type": "object",
            "propertyNames": _SPEC_KEY,
            "additionalProperties": {"type": "string", "maxLength": 255},
        }
    },
    ["extra_specs"],
)
EXTRA_SPEC_ITEM: Schema = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "propertyNames": _SPEC_KEY,
    "additionalProperties": {"type": "string", "maxLength": 255},
}
FLAVOR_ACTION: Schema = one_action(
    {
        "addTenantAccess": obj({"tenant": NAME}, ["tenant"]),
        "removeTenantAccess": obj({"tenant": NAME}, ["tenant"]),
    }
)

KEYPAIR_CREATE: Schema = obj(
    {
        "keypair": obj(
            {
                "name": NAME,
                "public_key": STRING,
                "type": {"type": "string", "enum": ["ssh", "x509"]},
                "user_id": STRING,
            },
            ["name", "public_key"],  # 2.92: import only
        )
    },
    ["keypair"],
)

_AGGREGATE_FIELDS: Schema = {"name": NAME, aggregates.AZ_KEY: nullable(NAME)}
AGGREGATE_CREATE: Schema = obj({"aggregate": obj(_AGGREGATE_FIELDS, ["name"])}, ["aggregate"])
AGGREGATE_UPDATE: Schema = obj({"aggregate": {**obj(_AGGREGATE_FIELDS), "minProperties": 1}}, ["aggregate"])
AGGREGATE_ACTION: Schema = one_action(
    {
        "add_host": obj({"host": NAME}, ["host"]),
        "remove_host": obj({"host": NAME}, ["host"]),
        "set_metadata": obj(
            {"metadata": string_map(nullable({"type": "string", "maxLength": 255}))}, ["metadata"]
        ),
    }
)

SERVER_GROUP_CREATE: Schema = obj(
    {
        "server_group": obj(
            {
                "name": NAME,
                "policy": {
                    "type": "string",
                    "enum": list(server_groups.POLICIES + server_groups.SOFT_POLICIES),
                },
                "rules": obj(
                    {
                        "max_server_per_host": {"type": "integer", "minimum": 1},
                        server_groups.FAILURE_DOMAIN_RULE: STRING,
                    }
                ),
            },
            ["name", "policy"],
        )
    },
    ["server_group"],
)

QUOTA_SET_UPDATE: Schema = obj(
    {
        "quota_set": obj(
            {
                **{name: QUOTA_LIMIT for name in quotas.visible_resources(max_version())},
                "force": {"anyOf": [BOOLEAN, STRING]},
            }
        )
    },
    ["quota_set"],
)
QUOTA_CLASS_SET_UPDATE: Schema = obj(
    {"quota_class_set": obj({name: QUOTA_LIMIT for name in quotas.class_resources(max_version())})},
    ["quota_class_set"],
)

SERVICE_UPDATE: Schema = obj(
    {
        "status": {"type": "string", "enum": ["enabled", "disabled"]},
        "disabled_reason": NAME,
        "forced_down": {"anyOf": [BOOLEAN, STRING]},
    }
)

HOST_LABELS: Schema = obj(
    {"labels": obj({label: nullable(NAME) for label in hosts.LABELS})},
    ["labels"],
)

# Query strings the list routes read from `request.query_params` (their `openapi_extra`).
LIMIT: Schema = {"type": "integer", "minimum": 0}
_SORT_DIR: Schema = {"type": "string", "enum": ["asc", "desc"]}
SERVER_LIST_QUERY: Schema = query(
    ("limit", LIMIT),
    ("marker", STRING),
    ("name", STRING),
    ("status", STRING),
    ("host", STRING),
    ("flavor", STRING),
    ("image", STRING),
    ("availability_zone", STRING),
    ("reservation_id", STRING),
    ("user_id", STRING),
    ("project_id", STRING),
    ("tenant_id", STRING),
    ("all_tenants", STRING),
    ("deleted", BOOLEAN),
    ("changes-since", {"type": "string", "format": "date-time"}),
    ("sort_key", STRING),
    ("sort_dir", _SORT_DIR),
    ("tags", STRING),
    ("tags-any", STRING),
    ("not-tags", STRING),
    ("not-tags-any", STRING),
    ("changes-before", {"type": "string", "format": "date-time"}),
    ("locked", BOOLEAN),
    ("hostname", STRING),
    ("key_name", STRING),
    ("config_drive", STRING),
    ("vm_state", STRING),
    ("task_state", STRING),
    ("power_state", {"type": "integer"}),
    ("progress", {"type": "integer"}),
    ("created_at", {"type": "string", "format": "date-time"}),
    ("launched_at", {"type": "string", "format": "date-time"}),
    ("terminated_at", {"type": "string", "format": "date-time"}),
)
FLAVOR_LIST_QUERY: Schema = query(
    ("limit", LIMIT),
    ("marker", STRING),
    ("is_public", STRING),
    ("minRam", NON_NEGATIVE),
    ("minDisk", NON_NEGATIVE),
    ("sort_key", STRING),
    ("sort_dir", _SORT_DIR),
)
USAGE_QUERY: Schema = query(
    ("start", STRING),
    ("end", STRING),
    ("detailed", STRING),
    ("limit", LIMIT),
    ("marker", STRING),
)
KEYPAIR_LIST_QUERY: Schema = query(("limit", LIMIT), ("marker", STRING), ("user_id", STRING))
HYPERVISOR_LIST_QUERY: Schema = query(
    ("limit", LIMIT),
    ("marker", STRING),
    ("hypervisor_hostname_pattern", STRING),
    ("with_servers", BOOLEAN),
)

# os-hosts (before 2.43): status and/or maintenance_mode, in the spellings Nova accepts.
_HOST_SWITCH: Schema = {
    "type": "string",
    "enum": ["enable", "disable", "Enable", "Disable", "ENABLE", "DISABLE"],
}
HOST_UPDATE: Schema = {
    **obj({"status": _HOST_SWITCH, "maintenance_mode": _HOST_SWITCH}),
    "anyOf": [{"required": ["status"]}, {"required": ["maintenance_mode"]}],
}
