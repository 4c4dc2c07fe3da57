"""Server view bodies against strict response schemas, microversion by microversion.

OpenStack's test tooling validates every Nova response against a JSON schema per microversion with
`additionalProperties: false`: a field from a later microversion is an error, and so is a missing
one. The schemas below are written for kumo from those rules (Nova's API reference and the rules
tempest enforces), a little stricter where Nova's behaviour is certain: admin-only fields must be
present for admins and absent for everybody else, and timestamps must have Nova's exact format.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from kumo.api.context import RequestContext
from kumo.compute.microversion import Microversion
from kumo.compute.models import Instance, InstanceAction, InstanceActionEvent
from kumo.compute.views import servers as view

BASE = "http://cloud.example:8774"
UUID = "6f0f54c6-6b2b-4b1e-9c2f-3d1b0c5b7a11"
IMAGE = "0b5a9d3e-8c41-4bd2-b6f0-5f1a0d6e2c77"

# -- a small JSON-schema checker (the subset these schemas use) ------------------------------------

_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _is_ip(value: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(value).version == version
    except ValueError:
        return False


_FORMATS: dict[str, Callable[[str], bool]] = {
    # Nova's utils.isotime: created, updated, fault created.
    "isotime": lambda v: re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v) is not None,
    # A naive datetime through Nova's JSON encoder: launched_at, action and event times.
    "usec": lambda v: re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}", v) is not None,
    "uri": lambda v: re.match(r"https?://[^/]+", v) is not None,
    "ipv4-or-empty": lambda v: v == "" or _is_ip(v, 4),
    "ipv6-or-empty": lambda v: v == "" or _is_ip(v, 6),
}


def errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Every way `value` breaks `schema`, as readable strings (empty: it conforms)."""
    if "oneOf" in schema:
        matching = [s for s in schema["oneOf"] if not errors(value, s, path)]
        return [] if len(matching) == 1 else [f"{path}: matches {len(matching)} of oneOf, not 1: {value!r}"]
    found: list[str] = []
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_JSON_TYPES[k](value) for k in kinds):
            return [f"{path}: {value!r} is not of type {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        fmt = schema.get("format")
        if fmt and not _FORMATS[fmt](value):
            found.append(f"{path}: {value!r} is not a {fmt}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if len(value) > schema.get("maxLength", len(value)):
            found.append(f"{path}: {value!r} is too long")
        if len(value) < schema.get("minLength", 0):
            found.append(f"{path}: {value!r} is too short")
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            found.append(f"{path}: {len(value)} items is out of bounds")
        for i, item in enumerate(value):
            found += errors(item, schema.get("items", {}), f"{path}[{i}]")
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties", {})
        patterns: dict[str, Any] = schema.get("patternProperties", {})
        for key in schema.get("required", []):
            if key not in value:
                found.append(f"{path}: required {key!r} is missing")
        for key, item in value.items():
            if key in props:
                found += errors(item, props[key], f"{path}.{key}")
                continue
            pattern_hits = [s for p, s in patterns.items() if re.search(p, key)]
            for sub in pattern_hits:
                found += errors(item, sub, f"{path}.{key}")
            if not pattern_hits and schema.get("additionalProperties", True) is False:
                found.append(f"{path}: unexpected {key!r}")
    return found


def assert_conforms(body: Any, schema: dict[str, Any]) -> None:
    wire = json.loads(json.dumps(body))  # what a client sees: no datetimes or tuples survive
    problems = errors(wire, schema)
    assert not problems, "\n".join(problems)


# -- the schemas --------------------------------------------------------------------------------

STR: dict[str, Any] = {"type": "string"}
STR_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
OBJ: dict[str, Any] = {"type": "object"}
ARRAY: dict[str, Any] = {"type": "array"}
ISOTIME: dict[str, Any] = {"type": "string", "format": "isotime"}
USEC: dict[str, Any] = {"type": "string", "format": "usec"}
USEC_OR_NULL: dict[str, Any] = {"type": ["string", "null"], "format": "usec"}


def strict(required: list[str], **props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


LINKS = {"type": "array", "items": strict(["href", "rel"], href={"type": "string", "format": "uri"}, rel=STR)}
IMAGE_REF = {"oneOf": [strict(["id", "links"], id=STR, links=LINKS), STR_OR_NULL]}
OLD_FLAVOR = strict(["id", "links"], id=STR, links=LINKS)
EMBEDDED_FLAVOR = strict(
    ["original_name", "disk", "ephemeral", "ram", "swap", "vcpus"],
    original_name=STR,
    disk=INT,
    ephemeral=INT,
    ram=INT,
    swap=INT,
    vcpus=INT,
    extra_specs={
        "type": "object",
        "patternProperties": {r"^[a-zA-Z0-9_\-\. :]+$": STR},
        "additionalProperties": False,
    },
)
FAULT = strict(["code", "created", "message"], code=INT, created=ISOTIME, message=STR, details=STR)
ADDRESSES = {
    "type": "object",
    "patternProperties": {
        r"^[a-zA-Z0-9-_.]+$": {
            "type": "array",
            "items": strict(
                ["version", "addr"],
                version={"enum": [4, 6]},
                addr=STR,
                **{"OS-EXT-IPS:type": {"enum": ["fixed", "floating"]}, "OS-EXT-IPS-MAC:mac_addr": STR},
            ),
        }
    },
}
TAGS = {"type": "array", "maxItems": 50, "items": {"type": "string", "pattern": "^[^,/]*$", "maxLength": 60}}
TRUSTED_CERTS = {
    "type": ["array", "null"],
    "minItems": 1,
    "maxItems": 50,
    "items": {"type": "string", "minLength": 1},
}
POWER_STATE = {"type": "integer", "enum": [0, 1, 3, 4, 6, 7]}

Shape = Literal["show", "update", "rebuild"]
ALL: tuple[Shape, ...] = ("show", "update", "rebuild")


@dataclass(frozen=True)
class Field:
    key: str
    schema: dict[str, Any]
    since: str = "2.1"
    until: str = "99.0"  # first version without it
    shapes: tuple[Shape, ...] = ALL
    required: bool = True
    admin_only: bool = False  # required for admins, absent for others
    in_list: bool = True  # False: in the show, update and rebuild bodies, never in a list
    # False: never in the rebuild body, even from 2.75 (Nova's show_user_data is False there:
    # tempest's 2.75 rebuild schema drops OS-EXT-SRV-ATTR:user_data)
    in_rebuild: bool = True


SERVER_FIELDS = [
    Field("id", STR),
    Field("name", STR),
    Field("status", STR),
    Field("image", IMAGE_REF),
    Field("flavor", OLD_FLAVOR, until="2.47"),
    Field("flavor", EMBEDDED_FLAVOR, since="2.47"),
    Field("user_id", STR),
    Field("tenant_id", STR),
    Field("created", ISOTIME),
    Field("updated", ISOTIME),
    Field("metadata", OBJ),
    Field("links", LINKS),
    Field("addresses", ADDRESSES),
    Field("hostId", STR),
    # Present only in some statuses; checked by dedicated tests below.
    Field("fault", FAULT, required=False),
    Field("progress", INT, required=False),
    Field("OS-DCF:diskConfig", STR),
    Field("accessIPv4", {"type": "string", "format": "ipv4-or-empty"}),
    Field("accessIPv6", {"type": "string", "format": "ipv6-or-empty"}),
    # GET and list detail only before 2.75; from 2.75 the PUT and rebuild bodies are the show body.
    Field("key_name", STR_OR_NULL, shapes=("show",)),
    # Left out for a server whose ports have no security group (or that has no port), as Nova.
    Field("security_groups", ARRAY, shapes=("show",), required=False),
    Field("config_drive", STR, shapes=("show",)),
    Field("OS-EXT-AZ:availability_zone", STR, shapes=("show",)),
    Field("OS-SRV-USG:launched_at", USEC_OR_NULL, shapes=("show",)),
    Field("OS-SRV-USG:terminated_at", USEC_OR_NULL, shapes=("show",)),
    Field("OS-EXT-STS:task_state", STR_OR_NULL, shapes=("show",)),
    Field("OS-EXT-STS:vm_state", STR, shapes=("show",)),
    Field("OS-EXT-STS:power_state", POWER_STATE, shapes=("show",)),
    Field(
        "os-extended-volumes:volumes_attached",
        {"type": "array", "items": strict([], id=STR)},
        shapes=("show",),
        until="2.3",
    ),
    Field(
        "os-extended-volumes:volumes_attached",
        {"type": "array", "items": strict([], id=STR, delete_on_termination=BOOL)},
        shapes=("show",),
        since="2.3",
    ),
    Field("OS-EXT-SRV-ATTR:host", STR_OR_NULL, shapes=("show",), admin_only=True),
    Field("OS-EXT-SRV-ATTR:hypervisor_hostname", STR_OR_NULL, shapes=("show",), admin_only=True),
    Field("OS-EXT-SRV-ATTR:instance_name", STR, shapes=("show",), admin_only=True),
    *(
        Field(f"OS-EXT-SRV-ATTR:{key}", schema, since="2.3", shapes=("show",), admin_only=True)
        for key, schema in [
            ("reservation_id", STR_OR_NULL),
            ("launch_index", INT),
            ("kernel_id", STR_OR_NULL),
            ("ramdisk_id", STR_OR_NULL),
            ("root_device_name", STR_OR_NULL),
        ]
    ),
    Field(
        "OS-EXT-SRV-ATTR:user_data",
        STR_OR_NULL,
        since="2.3",
        shapes=("show",),
        admin_only=True,
        in_rebuild=False,
    ),
    Field("OS-EXT-SRV-ATTR:hostname", STR, since="2.3", until="2.90", shapes=("show",), admin_only=True),
    Field("OS-EXT-SRV-ATTR:hostname", STR, since="2.90", shapes=("show",)),  # everyone's from 2.90
    Field("host_status", STR, since="2.16", shapes=("show",), admin_only=True),
    Field("pinned_availability_zone", STR_OR_NULL, since="2.96", shapes=("show",)),
    Field("locked", BOOL, since="2.9"),
    Field("description", STR_OR_NULL, since="2.19"),
    Field("tags", TAGS, since="2.26"),
    Field(
        "key_name",
        {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 255}, {"type": "null"}]},
        since="2.54",
        shapes=("rebuild",),
    ),
    Field(
        "user_data",
        {"oneOf": [{"type": "string", "maxLength": 65535}, {"type": "null"}]},
        since="2.57",
        shapes=("rebuild",),
    ),
    Field("trusted_image_certificates", TRUSTED_CERTS, since="2.63"),
    Field("server_groups", {"type": "array", "maxItems": 1, "items": STR}, since="2.71", in_list=False),
    Field("locked_reason", STR_OR_NULL, since="2.73"),
]


def mv(text: str) -> Microversion:
    major, minor = (int(p) for p in text.split("."))
    return Microversion(major, minor)


def server_schema(
    version: str, shape: Shape, admin: bool, admin_pass: bool = False, listing: bool = False
) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required: list[str] = []
    full = shape == "show" or mv(version) >= mv("2.75")  # 2.75: PUT and rebuild answer the show body
    for f in SERVER_FIELDS:
        in_shape = shape in f.shapes or (full and "show" in f.shapes)
        if not in_shape or not (mv(f.since) <= mv(version) < mv(f.until)):
            continue
        if listing and not f.in_list:
            continue
        if shape == "rebuild" and not f.in_rebuild:
            continue
        if f.admin_only and not admin:
            continue
        props[f.key] = f.schema
        if f.required and f.key not in required:
            required.append(f.key)
    if admin_pass:
        props["adminPass"] = STR
        required.append("adminPass")
    return strict(required, **props)


def list_schema(item: dict[str, Any]) -> dict[str, Any]:
    return strict(["servers"], servers={"type": "array", "items": item}, servers_links=LINKS)


BRIEF = strict(["id", "links", "name"], id=STR, links=LINKS, name=STR)
CREATED = strict(["id", "links"], id=STR, links=LINKS, security_groups=ARRAY, **{"OS-DCF:diskConfig": STR})


def action_schema(version: str, admin: bool, with_events: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "action": STR,
        "request_id": STR,
        "user_id": STR,
        "project_id": STR,
        "start_time": USEC,
        "message": STR_OR_NULL,
        "instance_uuid": STR,
    }
    required = list(props)
    if mv(version) >= mv("2.58"):
        props["updated_at"] = USEC
        required.append("updated_at")
    if with_events:
        event: dict[str, Any] = {"event": STR, "start_time": USEC, "finish_time": USEC, "result": STR}
        if admin:
            event["traceback"] = STR_OR_NULL
        if mv(version) >= mv("2.62"):
            event["hostId"] = STR
            if admin:
                event["host"] = STR
        if mv(version) >= mv("2.84") and admin:  # Nova's events:details policy: admin
            event["details"] = STR_OR_NULL
        props["events"] = {"type": "array", "items": strict(list(event), **event)}
        required.append("events")
    return strict(required, **props)


# -- builders -----------------------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 3, 9, 15, 42, 123456)


def ctx(admin: bool) -> RequestContext:
    if admin:
        return RequestContext(user_id="u-admin", project_id="p-admin", roles=("admin", "member", "reader"))
    return RequestContext(user_id="u-demo", project_id="p-demo", roles=("member", "reader"))


FLAVOR = {
    "id": "42",
    "name": "m1.small",
    "vcpus": 1,
    "ram": 512,
    "disk": 1,
    "ephemeral": 0,
    "swap": 0,
    "extra_specs": {"hw:cpu_policy": "shared"},
}


def server(state: str = "ACTIVE", **overrides: Any) -> Instance:
    """An instance as the database would hold it, in one of BUILD / ACTIVE / ERROR."""
    fields: dict[str, Any] = dict(
        id=7,
        uuid=UUID,
        project_id="p-demo",
        user_id="u-demo",
        name="web-1",
        description=None,
        hostname="web-1",
        image_ref=IMAGE,
        flavor=dict(FLAVOR),
        vm_state="active",
        task_state=None,
        power_state=1,
        host="compute-1",
        availability_zone="nova",
        requested_az=None,
        key_name="k1",
        key_data=None,
        user_data=None,
        access_ip_v4="",
        access_ip_v6="",
        config_drive="",
        locked=False,
        progress=0,
        metadata_={"role": "web"},
        tags=["blue"],
        scheduler_hints={},
        server_group=None,
        fault=None,
        migration_source=None,
        launch_index=0,
        reservation_id="r-abc123",
        created_at=NOW,
        updated_at=NOW,
        launched_at=NOW,
        terminated_at=None,
        deleted=False,
    )
    if state == "BUILD":
        fields.update(
            vm_state="building",
            task_state="scheduling",
            power_state=0,
            host=None,
            availability_zone=None,
            launched_at=None,
        )
    elif state == "ERROR":
        fields.update(
            vm_state="error",
            power_state=0,
            launched_at=None,
            fault={
                "code": 500,
                "message": "No valid host was found.",
                "details": "Traceback (most recent call)...",
                "created": NOW.isoformat(),
            },
        )
    fields.update(overrides)
    return Instance(**fields)


def action(with_events: bool = True) -> tuple[InstanceAction, list[InstanceActionEvent]]:
    row = InstanceAction(
        id=1,
        instance_uuid=UUID,
        action="create",
        request_id="req-1",
        user_id="u-demo",
        project_id="p-demo",
        message=None,
        start_time=NOW,
        updated_at=NOW,
    )
    events = [
        InstanceActionEvent(
            id=1,
            action_id=1,
            event="compute__do_build_and_run_instance",
            host="compute-1",
            result="Success",
            traceback=None,
            details=None,
            start_time=NOW,
            finish_time=NOW,
        )
    ]
    return row, events


# -- the matrix ---------------------------------------------------------------------------------

VERSIONS = [
    "2.1",
    "2.3",
    "2.9",
    "2.16",
    "2.19",
    "2.26",
    "2.47",
    "2.54",
    "2.57",
    "2.58",
    "2.62",
    "2.63",
    "2.64",
    "2.71",
    "2.73",
    "2.75",
    "2.90",
    "2.96",
]
STATES = ["BUILD", "ACTIVE", "ERROR"]
WHO = {"admin": True, "member": False}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("version", VERSIONS)
def test_show_and_list_detail_conform(version: str, who: str, state: str) -> None:
    admin = WHO[who]
    instance = server(state)
    body = view.detail(instance, BASE, mv(version), ctx(admin), host_up=True)
    item = server_schema(version, "show", admin)
    assert_conforms({"server": body}, strict(["server"], server=item))
    up = {instance.host: True} if instance.host else {}
    page = view.detail_page([view.record(instance)] * 2, BASE, mv(version), ctx(admin), up)
    assert_conforms({"servers": page}, list_schema(server_schema(version, "show", admin, listing=True)))


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("version", VERSIONS)
def test_update_response_conforms(version: str, who: str, state: str) -> None:
    admin = WHO[who]
    body = view.updated(server(state), BASE, mv(version), ctx(admin))
    assert_conforms({"server": body}, strict(["server"], server=server_schema(version, "update", admin)))


@pytest.mark.parametrize("admin_pass", [None, "s3cret"])
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("version", VERSIONS)
def test_rebuild_response_conforms(version: str, who: str, state: str, admin_pass: str | None) -> None:
    admin = WHO[who]
    instance = server(state, task_state="rebuilding" if state != "BUILD" else "scheduling")
    body = view.rebuilt(instance, BASE, mv(version), ctx(admin), admin_pass)
    schema = server_schema(version, "rebuild", admin, admin_pass=admin_pass is not None)
    assert_conforms({"server": body}, strict(["server"], server=schema))


@pytest.mark.parametrize("state", STATES)
def test_list_and_create_conform(state: str) -> None:
    instance = server(state)
    assert_conforms({"servers": [view.brief(instance, BASE)]}, list_schema(BRIEF))
    assert_conforms({"server": view.created(instance, BASE, None)}, strict(["server"], server=CREATED))
    with_pass = dict(
        CREATED,
        properties={**CREATED["properties"], "adminPass": STR},
        required=[*CREATED["required"], "adminPass"],
    )
    assert_conforms({"server": view.created(instance, BASE, "pw")}, strict(["server"], server=with_pass))


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("version", ["2.1", "2.21", "2.51", "2.58", "2.62", "2.64", "2.84", "2.96"])
def test_instance_actions_conform(version: str, who: str) -> None:
    admin = WHO[who]
    row, events = action()
    listed = {"instanceActions": [view.action_body(row, mv(version), None, ctx(admin))]}
    assert_conforms(
        listed,
        strict(
            ["instanceActions"],
            instanceActions={"type": "array", "items": action_schema(version, admin, with_events=False)},
        ),
    )
    # The route shows events to admins always and to owners from 2.51 (see routes/instance_actions).
    show_events = admin or mv(version) >= mv("2.51")
    shown = view.action_body(row, mv(version), events if show_events else None, ctx(admin))
    assert_conforms(
        {"instanceAction": shown},
        strict(["instanceAction"], instanceAction=action_schema(version, admin, with_events=show_events)),
    )


# -- the checker itself must catch what tempest catches -----------------------------------------


def test_a_later_microversion_field_is_rejected() -> None:
    body = view.detail(server(), BASE, mv("2.3"), ctx(True), host_up=True)
    problems = errors(body, server_schema("2.1", "show", admin=True))
    assert any("OS-EXT-SRV-ATTR:reservation_id" in p for p in problems)


def test_a_missing_field_is_rejected() -> None:
    body = view.detail(server(), BASE, mv("2.9"), ctx(False))
    del body["locked"]
    assert errors(body, server_schema("2.9", "show", admin=False)) == ["$: required 'locked' is missing"]


def test_the_detail_view_is_not_an_update_or_rebuild_response() -> None:
    body = view.detail(server(), BASE, mv("2.1"), ctx(False))
    assert "$: unexpected 'key_name'" in errors(body, server_schema("2.1", "update", admin=False))
    assert "$: unexpected 'config_drive'" in errors(body, server_schema("2.1", "rebuild", admin=False))


# -- behaviours the schemas leave optional -------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "progress", "fault"), [("BUILD", True, False), ("ACTIVE", True, False), ("ERROR", False, True)]
)
def test_progress_and_fault_follow_the_status(state: str, progress: bool, fault: bool) -> None:
    for body in (
        view.detail(server(state), BASE, mv("2.1"), ctx(True)),
        view.updated(server(state), BASE, mv("2.1"), ctx(True)),
    ):
        assert ("progress" in body) is progress
        assert ("fault" in body) is fault


def test_fault_details_of_a_500_are_for_admins_only() -> None:
    admin_fault = view.detail(server("ERROR"), BASE, mv("2.1"), ctx(True))["fault"]
    member_fault = view.detail(server("ERROR"), BASE, mv("2.1"), ctx(False))["fault"]
    assert admin_fault == {
        "code": 500,
        "created": "2026-11-03T09:15:42Z",
        "message": "No valid host was found.",
        "details": "Traceback (most recent call)...",
    }
    assert "details" not in member_fault


def test_fault_details_of_other_codes_are_shown_and_empty_ones_omitted() -> None:
    fault = {"code": 400, "message": "Bad image", "details": "size mismatch", "created": NOW.isoformat()}
    assert (
        view.detail(server("ERROR", fault=fault), BASE, mv("2.1"), ctx(False))["fault"]["details"]
        == "size mismatch"
    )
    bare = dict(fault, details=None)
    assert "details" not in view.detail(server("ERROR", fault=bare), BASE, mv("2.1"), ctx(True))["fault"]


def test_timestamps_use_nova_formats() -> None:
    body = view.detail(server(), BASE, mv("2.1"), ctx(False))
    assert body["created"] == body["updated"] == "2026-11-03T09:15:42Z"
    assert body["OS-SRV-USG:launched_at"] == "2026-11-03T09:15:42.123456"
    assert body["OS-SRV-USG:terminated_at"] is None


def test_image_is_an_empty_string_when_booted_from_volume() -> None:
    assert view.detail(server(image_ref=""), BASE, mv("2.1"), ctx(False))["image"] == ""
    image = view.detail(server(), BASE, mv("2.1"), ctx(False))["image"]
    assert image == {"id": IMAGE, "links": [{"rel": "bookmark", "href": f"{BASE}/compute/images/{IMAGE}"}]}


def test_flavor_shape_changes_at_2_47() -> None:
    old = view.detail(server(), BASE, mv("2.46"), ctx(False))["flavor"]
    new = view.detail(server(), BASE, mv("2.47"), ctx(False))["flavor"]
    assert old == {"id": "42", "links": [{"rel": "bookmark", "href": f"{BASE}/compute/flavors/42"}]}
    assert new == {
        "vcpus": 1,
        "ram": 512,
        "disk": 1,
        "ephemeral": 0,
        "swap": 0,
        "original_name": "m1.small",
        "extra_specs": {"hw:cpu_policy": "shared"},
    }


@pytest.mark.parametrize(
    ("host", "up", "expected"),
    [
        (None, None, ""),
        ("compute-1", True, "UP"),
        ("compute-1", False, "DOWN"),
        ("compute-1", None, "UNKNOWN"),
    ],
)
def test_host_status_for_admins(host: str | None, up: bool | None, expected: str) -> None:
    body = view.detail(server(host=host), BASE, mv("2.16"), ctx(True), host_up=up)
    assert body["host_status"] == expected
    assert "host_status" not in view.detail(server(host=host), BASE, mv("2.16"), ctx(False), host_up=up)


def test_rebuild_carries_key_name_and_user_data_from_their_versions() -> None:
    instance = server(key_name="k2", user_data="aGVsbG8=")
    assert "key_name" not in view.rebuilt(instance, BASE, mv("2.53"), ctx(False), None)
    at_254 = view.rebuilt(instance, BASE, mv("2.54"), ctx(False), None)
    assert at_254["key_name"] == "k2" and "user_data" not in at_254
    assert view.rebuilt(instance, BASE, mv("2.57"), ctx(False), "pw")["user_data"] == "aGVsbG8="
    assert view.rebuilt(instance, BASE, mv("2.57"), ctx(False), "pw")["adminPass"] == "pw"


def test_event_host_is_for_admins_and_host_id_for_everyone_from_2_62() -> None:
    row, events = action()
    admin_event = view.action_body(row, mv("2.62"), events, ctx(True))["events"][0]
    member_event = view.action_body(row, mv("2.62"), events, ctx(False))["events"][0]
    assert admin_event["host"] == "compute-1"
    assert admin_event["hostId"] == member_event["hostId"] == view._hash_host("p-demo", "compute-1")
    assert "host" not in member_event and "traceback" not in member_event
    assert "hostId" not in view.action_body(row, mv("2.61"), events, ctx(True))["events"][0]
