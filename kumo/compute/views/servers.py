"""Server bodies exactly as Nova shapes them, per microversion (2.1 … 2.96).

One renderer (`render`) writes every field of a server body, from one record: the columns the
list page reads (DETAIL_FIELDS), which `record` also makes of an ORM instance. Three shapes:
GET show / list detail (`detail`, `detail_page`), the PUT update response (`updated`) and the
rebuild response (`rebuilt`). Before 2.75 Nova answers PUT and rebuild with the core only: no
key_name, security groups, OS-EXT-* or OS-SRV-USG attributes (rebuild gains key_name at 2.54
and user_data at 2.57). Fields tied to a microversion appear from it on in every shape: locked
(2.9), description (2.19), tags (2.26), the embedded flavor (2.47), trusted certs (2.63),
locked_reason (2.73). From 2.75 the PUT and rebuild responses are the show body. The show,
update and rebuild bodies (not the list) carry server_groups from 2.71. From 2.90 everyone sees
OS-EXT-SRV-ATTR:hostname; from 2.96 pinned_availability_zone (the zone the create asked for).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Row

from kumo.api.context import RequestContext
from kumo.compute import states
from kumo.compute.microversion import Microversion
from kumo.compute.models import Instance
from kumo.compute.server_networks import NO_NETWORKING, Networking

# Progress is shown in these statuses only, a fault in the others (Nova's view builder).
_PROGRESS_STATUSES = {"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"}
_FAULT_STATUSES = {"ERROR", "DELETED"}


def iso(value: dt.datetime | None) -> str | None:
    """Nova's utils.isotime: second precision and a Z (`created`, `updated`, fault `created`)."""
    # isoformat writes the same text as strftime("%Y-%m-%dT%H:%M:%SZ"), in half the time.
    return value.isoformat(timespec="seconds") + "Z" if value else None


def usec(value: dt.datetime | None) -> str | None:
    """A naive datetime as Nova's JSON encoder writes it: microseconds, no zone (launched_at…)."""
    return value.isoformat(timespec="microseconds") if value else None


def _hash_host(project_id: str, host: str | None) -> str:
    """Nova's hostId: stable per project and host, revealing neither."""
    return hashlib.sha224((project_id + host).encode()).hexdigest() if host else ""


def links(base: str, kind: str, ident: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{base}/compute/v2.1/{kind}/{ident}"},
        {"rel": "bookmark", "href": f"{base}/compute/{kind}/{ident}"},
    ]


def brief(instance: Instance | Row[Any], base: str) -> dict[str, Any]:
    return {"id": instance.uuid, "name": instance.name, "links": links(base, "servers", instance.uuid)}


def _image(image_ref: str | None, base: str) -> dict[str, Any] | str:
    # Booted from volume: Nova answers an empty string, not null and not an empty object.
    if not image_ref:
        return ""
    bookmark = {"rel": "bookmark", "href": f"{base}/compute/images/{image_ref}"}
    return {"id": image_ref, "links": [bookmark]}


def _flavor(flavor: dict[str, Any] | None, base: str, version: Microversion) -> dict[str, Any]:
    """The server's `flavor` from its boot-time snapshot."""
    flavor = flavor or {}
    if version.before("2.47"):
        if "id" not in flavor:
            return {}  # flavor record lost: Nova shows an empty object
        flavor_id = str(flavor["id"])
        bookmark = {"rel": "bookmark", "href": f"{base}/compute/flavors/{flavor_id}"}
        return {"id": flavor_id, "links": [bookmark]}
    # 2.47: the flavor as it was at boot. Extra specs are readable by the owner and admins (Nova's
    # default policy), so whoever can see the server sees them.
    return {
        "vcpus": int(flavor.get("vcpus", 0)),
        "ram": int(flavor.get("ram", 0)),
        "disk": int(flavor.get("disk", 0)),
        "ephemeral": int(flavor.get("ephemeral") or 0),
        "swap": int(flavor.get("swap") or 0),
        "original_name": str(flavor.get("name", "")),
        "extra_specs": {str(k): str(v) for k, v in (flavor.get("extra_specs") or {}).items()},
    }


def _fault(
    raw: dict[str, Any] | None, updated_at: dt.datetime | None, ctx: RequestContext
) -> dict[str, Any] | None:
    if not raw:
        return None
    created = raw.get("created")
    when = dt.datetime.fromisoformat(created) if isinstance(created, str) else updated_at
    fault: dict[str, Any] = {
        "code": int(raw.get("code", 500)),
        "created": iso(when),
        "message": str(raw.get("message") or ""),
    }
    # Details (a traceback, for 500s) only when there are some, and for a 500 only to admins.
    details = raw.get("details")
    if details and (ctx.is_admin or fault["code"] != 500):
        fault["details"] = str(details)
    return fault


# The record a server body is rendered from, in this order: the columns the list page reads
# (`servers.list_servers(..., fields=DETAIL_FIELDS)`; JSON columns as their stored text), and
# what `record` makes of an ORM instance. A row is unpacked, not read attribute by attribute.
DETAIL_FIELDS = (
    "id",
    "uuid",
    "name",
    "project_id",
    "user_id",
    "description",
    "hostname",
    "image_ref",
    "flavor",
    "vm_state",
    "task_state",
    "power_state",
    "host",
    "availability_zone",
    "key_name",
    "access_ip_v4",
    "access_ip_v6",
    "config_drive",
    "locked",
    "progress",
    "metadata_",
    "tags",
    "fault",
    "launch_index",
    "reservation_id",
    "user_data",
    "created_at",
    "updated_at",
    "launched_at",
    "terminated_at",
    "locked_reason",
    "requested_az",
)
_JSON_FIELDS = frozenset(
    name for name in DETAIL_FIELDS if isinstance(Instance.__mapper__.columns[name].type, JSON)
)


def record(instance: Instance) -> tuple[Any, ...]:
    """The instance as the list page reads it: its DETAIL_FIELDS, JSON columns as JSON text."""
    return tuple(
        orjson.dumps(value).decode() if name in _JSON_FIELDS and value is not None else value
        for name in DETAIL_FIELDS
        for value in (getattr(instance, name),)
    )


class Shape(enum.Enum):
    """Which body: GET show and list detail; the PUT update response (before 2.75 Nova answers
    it with the core only); the rebuild response (the core, key_name from 2.54, user_data from
    2.57)."""

    DETAIL = "detail"
    UPDATED = "updated"
    REBUILT = "rebuilt"


def detail(
    instance: Instance,
    base: str,
    version: Microversion,
    ctx: RequestContext,
    host_up: bool | None = None,
    networking: Networking = NO_NETWORKING,
) -> dict[str, Any]:
    """GET /servers/{id}: `render` of the instance's record, and its server groups (2.71)."""
    up = {instance.host: host_up} if instance.host and host_up is not None else {}
    body = render([record(instance)], base, version, ctx, up, networking=networking)[0]
    return _with_groups(body, instance, version)


def _with_groups(body: dict[str, Any], instance: Instance, version: Microversion) -> dict[str, Any]:
    """2.71: the ids of the server groups the server is in (kumo: at most one) in the show,
    update and rebuild bodies; never in a list."""
    if version.at_least("2.71"):
        body["server_groups"] = [instance.server_group] if instance.server_group else []
    return body


def detail_page(
    rows: Iterable[Sequence[Any]],
    base: str,
    version: Microversion,
    ctx: RequestContext,
    up: Mapping[str, bool],
    networking: Networking = NO_NETWORKING,
) -> list[dict[str, Any]]:
    """GET /servers/detail: `render` of each row of DETAIL_FIELDS read by columns."""
    return render(rows, base, version, ctx, up, networking=networking)


def updated(
    instance: Instance,
    base: str,
    version: Microversion,
    ctx: RequestContext,
    networking: Networking = NO_NETWORKING,
    host_up: bool | None = None,
) -> dict[str, Any]:
    """The PUT /servers/{id} response (before 2.75: the core view only; from it the show body)."""
    up = {instance.host: host_up} if instance.host and host_up is not None else {}
    body = render([record(instance)], base, version, ctx, up, Shape.UPDATED, networking)[0]
    return _with_groups(body, instance, version)


def rebuilt(
    instance: Instance,
    base: str,
    version: Microversion,
    ctx: RequestContext,
    admin_pass: str | None,
    networking: Networking = NO_NETWORKING,
    host_up: bool | None = None,
) -> dict[str, Any]:
    """The rebuild action's response: the core view, key_name from 2.54, user_data from 2.57;
    from 2.75 the show body (with user_data)."""
    up = {instance.host: host_up} if instance.host and host_up is not None else {}
    body = render([record(instance)], base, version, ctx, up, Shape.REBUILT, networking)[0]
    _with_groups(body, instance, version)
    if admin_pass is not None:
        body["adminPass"] = admin_pass
    return body


def render(
    records: Iterable[Sequence[Any]],
    base: str,
    version: Microversion,
    ctx: RequestContext,
    up: Mapping[str, bool],
    shape: Shape = Shape.DETAIL,
    networking: Networking = NO_NETWORKING,
) -> list[dict[str, Any]]:
    """The body of each server record (DETAIL_FIELDS, JSON columns as text): the one place every
    field of a server body is written. `up`: host -> its compute service is up (a host missing
    shows UNKNOWN). `networking`: the records' addresses (hidden while a server is building, as
    Nova) and security groups (the key left out for a server with none, as Nova). What every
    server body carries is Nova's view with all the optional parts switched off; the DETAIL
    shape adds the key name, config drive, OS-EXT-* and OS-SRV-USG attributes, security groups,
    and for admins the extended server attributes.

    Every body of a call is computed from its own record alone; bodies share objects they hold
    alike (a page of 1,000 repeats a few flavors, images, hosts, metadata and states: each
    distinct one is decoded and shaped once per call), so they are for encoding, not mutating.
    The microversion is compared once per call, not per record."""
    admin = ctx.is_admin
    # From 2.75 the update and rebuild responses are the show body.
    full = shape is Shape.DETAIL or version.at_least("2.75")
    locked_field = version.at_least("2.9")
    locked_reason_field = version.at_least("2.73")
    hostname_field = version.at_least("2.90")  # OS-EXT-SRV-ATTR:hostname for everyone
    pinned_zone_field = version.at_least("2.96")
    description_field = version.at_least("2.19")
    tags_field = version.at_least("2.26")
    certs_field = version.at_least("2.63")
    key_name_field = full or (shape is Shape.REBUILT and version.at_least("2.54"))
    rebuilt_user_data = shape is Shape.REBUILT and version.at_least("2.57")
    extended = admin and version.at_least("2.3")
    host_status_field = admin and version.at_least("2.16")
    self_href = f"{base}/compute/v2.1/servers/"
    bookmark_href = f"{base}/compute/servers/"
    flavors: dict[str | None, dict[str, Any]] = {}
    metadata: dict[str | None, dict[str, Any]] = {}
    tag_lists: dict[str | None, list[str]] = {}
    images: dict[str | None, dict[str, Any] | str] = {}
    host_ids: dict[tuple[str, str | None], str] = {}
    statuses: dict[tuple[str, str | None], str] = {}
    no_addresses: dict[str, Any] = {}
    no_volumes: list[Any] = []
    server_addresses = networking.addresses
    server_groups = networking.security_groups
    group_lists: dict[tuple[str, ...], list[dict[str, str]]] = {}
    items = []
    for (
        ident,
        uuid,
        name,
        project_id,
        user_id,
        description,
        hostname,
        image_ref,
        flavor_text,
        vm_state,
        task_state,
        power_state,
        host,
        availability_zone,
        key_name,
        access_ip_v4,
        access_ip_v6,
        config_drive,
        locked,
        progress,
        metadata_text,
        tags_text,
        fault_text,
        launch_index,
        reservation_id,
        user_data,
        created_at,
        updated_at,
        launched_at,
        terminated_at,
        locked_reason,
        requested_az,
    ) in records:
        state = (vm_state, task_state)
        status = statuses.get(state)
        if status is None:
            status = statuses[state] = states.status(vm_state, task_state)
        flavor = flavors.get(flavor_text)
        if flavor is None:
            flavor = flavors[flavor_text] = _flavor(_decoded(flavor_text), base, version)
        meta = metadata.get(metadata_text)
        if meta is None:
            meta = metadata[metadata_text] = dict(_decoded(metadata_text) or {})
        image = images.get(image_ref)
        if image is None:
            image = images[image_ref] = _image(image_ref, base)
        owner = (project_id, host)
        host_hash = host_ids.get(owner)
        if host_hash is None:
            host_hash = host_ids[owner] = _hash_host(project_id, host)
        changed_at = updated_at or created_at
        body: dict[str, Any] = {
            "id": uuid,
            "name": name,
            "status": status,
            "tenant_id": project_id or "",
            "user_id": user_id or "",
            "metadata": meta,
            "hostId": host_hash,
            "image": image,
            "flavor": flavor,
            # iso() inlined: 4,000 calls a page.
            "created": created_at and created_at.isoformat(timespec="seconds") + "Z",
            "updated": changed_at and changed_at.isoformat(timespec="seconds") + "Z",
            "addresses": no_addresses
            if vm_state == states.VmState.BUILDING
            else server_addresses.get(uuid, no_addresses),
            "accessIPv4": access_ip_v4 or "",
            "accessIPv6": access_ip_v6 or "",
            "links": [
                {"rel": "self", "href": self_href + uuid},
                {"rel": "bookmark", "href": bookmark_href + uuid},
            ],
            "OS-DCF:diskConfig": "MANUAL",
        }
        if status in _FAULT_STATUSES:
            fault = _fault(_decoded(fault_text), updated_at, ctx)
            if fault is not None:
                body["fault"] = fault
        if status in _PROGRESS_STATUSES:
            body["progress"] = progress or 0
        if locked_field:
            body["locked"] = bool(locked)
        if locked_reason_field:
            body["locked_reason"] = locked_reason if locked else None
        if description_field:
            body["description"] = description
        if tags_field:
            tags = tag_lists.get(tags_text)
            if tags is None:
                tags = tag_lists[tags_text] = list(_decoded(tags_text) or [])
            body["tags"] = tags
        if certs_field:
            body["trusted_image_certificates"] = None  # kumo does not verify image signatures
        if key_name_field:
            body["key_name"] = key_name
        if rebuilt_user_data:
            body["user_data"] = user_data
        if not full:
            items.append(body)
            continue
        body["config_drive"] = config_drive or ""
        body["OS-EXT-AZ:availability_zone"] = availability_zone or ""
        body["OS-EXT-STS:task_state"] = task_state
        body["OS-EXT-STS:vm_state"] = vm_state
        body["OS-EXT-STS:power_state"] = int(power_state or 0)
        body["OS-SRV-USG:launched_at"] = launched_at and launched_at.isoformat(timespec="microseconds")
        body["OS-SRV-USG:terminated_at"] = terminated_at and terminated_at.isoformat(timespec="microseconds")
        body["os-extended-volumes:volumes_attached"] = no_volumes
        if pinned_zone_field:
            body["pinned_availability_zone"] = requested_az
        if hostname_field:
            body["OS-EXT-SRV-ATTR:hostname"] = hostname or ""
        groups = server_groups.get(uuid)
        if groups:
            key = tuple(groups)
            shown = group_lists.get(key)
            if shown is None:
                shown = group_lists[key] = [{"name": group} for group in groups]
            body["security_groups"] = shown
        if admin:  # extended server attributes: admin-only by Nova's default policy
            body["OS-EXT-SRV-ATTR:host"] = host
            body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = host
            body["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{ident or 0:08x}"
            if extended:
                body["OS-EXT-SRV-ATTR:reservation_id"] = reservation_id
                body["OS-EXT-SRV-ATTR:launch_index"] = launch_index or 0
                body["OS-EXT-SRV-ATTR:hostname"] = hostname or ""
                body["OS-EXT-SRV-ATTR:kernel_id"] = ""
                body["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
                # Set when the host builds the instance; unknown while it is being scheduled.
                body["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda" if host else None
                # Not in the rebuild answer, which carries user_data under its own name
                # from 2.57 (Nova's show_user_data, False for a rebuild only).
                if shape is not Shape.REBUILT:
                    body["OS-EXT-SRV-ATTR:user_data"] = user_data
            if host_status_field:
                if not host:
                    body["host_status"] = ""
                else:
                    host_up = up.get(host)
                    body["host_status"] = "UNKNOWN" if host_up is None else "UP" if host_up else "DOWN"
        items.append(body)
    return items


def _decoded(raw: str | None) -> Any:
    return orjson.loads(raw) if raw else None


def created(
    instance: Instance, base: str, admin_pass: str | None, security_groups: Sequence[str] | None = None
) -> dict[str, Any]:
    """The create response: Nova names the security groups asked for (default: "default")."""
    body: dict[str, Any] = {
        "id": instance.uuid,
        "links": links(base, "servers", instance.uuid),
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": [{"name": name} for name in security_groups or ["default"]],
    }
    if admin_pass is not None:
        body["adminPass"] = admin_pass
    return body


def action_body(
    action: Any, version: Microversion, events: list[Any] | None, ctx: RequestContext
) -> dict[str, Any]:
    """One instance action; `events` None leaves them out (the list call, or hidden by policy).

    Admins see each event's traceback at every version and its host from 2.62; everyone sees the
    event's hostId from 2.62; admins see its details (null when none) from 2.84."""
    body: dict[str, Any] = {
        "action": action.action,
        "instance_uuid": action.instance_uuid,
        "message": action.message,
        "project_id": action.project_id or "",
        "request_id": action.request_id,
        "start_time": usec(action.start_time),
        "user_id": action.user_id or "",
    }
    if version.at_least("2.58"):
        body["updated_at"] = usec(action.updated_at or action.start_time)
    if events is not None:
        out = []
        for ev in events:
            item: dict[str, Any] = {
                "event": ev.event,
                "start_time": usec(ev.start_time),
                "finish_time": usec(ev.finish_time),
                "result": ev.result,
            }
            if ctx.is_admin:
                item["traceback"] = ev.traceback
            if version.at_least("2.62"):
                item["hostId"] = _hash_host(action.project_id or "", ev.host)
                if ctx.is_admin:
                    item["host"] = ev.host or ""
            if version.at_least("2.84") and ctx.is_admin:  # Nova's events:details policy: admin
                item["details"] = ev.details
            out.append(item)
        body["events"] = out
    return body
