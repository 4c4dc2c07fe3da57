"""/v2.1/servers: create, list, show, update, delete, and server metadata."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import params, schemas, server_networks, servers
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion, min_version, require
from kumo.compute.params import page as page_params
from kumo.compute.params import strict_bool, time_param
from kumo.compute.tags import validate_tags
from kumo.compute.views import servers as view
from kumo.compute.workers import SCHEDULER_KEY
from kumo.errors import BadRequest, NotFound
from kumo.runtime import Runtime
from kumo.tags import TagFilter
from kumo.validation import MAX_INT, int_text
from kumo.work.queue import host_key

router = APIRouter(prefix="/compute")


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _obj(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise BadRequest(
            f"Invalid input for field/attribute {key}. Value: {value}. {key!r} is a required property"
        )
    return value


def _ref(value: Any, field: str) -> str:
    """flavorRef/imageRef: a string (an id or a link to one); flavorRef may be an integer."""
    if isinstance(value, int) and not isinstance(value, bool) and field == "flavorRef":
        value = str(value)
    return params.string_value(value, field).rsplit("/", 1)[-1]


def _tags(value: Any, version: Microversion) -> list[str]:
    """Tags on create: from 2.52 (before, an unexpected property, as Nova's schema)."""
    if value is None:
        return []
    if version.before("2.52"):
        raise BadRequest(
            "Invalid input for field/attribute server. Additional properties are not allowed "
            "('tags' was unexpected)"
        )
    return validate_tags(value)


# Hints the scheduler reads: each a string or a list of strings (Nova: uuids).
_HOST_HINTS = ("group", "same_host", "different_host")
# Set by kumo itself (an admin's `zone:host`), never taken from a request.
_INTERNAL_HINTS = ("force_host", "requested_host")


def _hints(value: Any) -> dict[str, Any]:
    """os:scheduler_hints: the hints kumo interprets typed; other hints are kept as Nova keeps
    them, except the internal `force_host`, which only the forced-host policy may set."""
    if not isinstance(value, dict):
        raise BadRequest("Invalid input for field/attribute os:scheduler_hints.")
    for key in _HOST_HINTS:
        hint = value.get(key)
        if hint is None:
            continue
        for item in hint if isinstance(hint, list) else [hint]:
            params.string_value(item, key)
    return {k: v for k, v in value.items() if k not in _INTERNAL_HINTS}


def _optional_string(server: dict[str, Any], key: str, max_length: int = 255) -> str | None:
    value = server.get(key)
    return None if value is None else params.string_value(value, key, max_length)


def parse_create(
    body: dict[str, Any], max_count_cap: int, version: Microversion | None = None
) -> servers.CreateRequest:
    """The create body, every field typed and bounded; `max_count_cap` bounds the count;
    `networks` is read as `version` (default 2.1) has it."""
    server = _obj(body, "server")
    for required in ("flavorRef", "name"):
        if required not in server:
            raise BadRequest(f"Invalid input for field/attribute server. '{required}' is a required property")
    if not server.get("imageRef") and not server.get("block_device_mapping_v2"):
        raise BadRequest("Block Device Mapping is Invalid: imageRef is required (no volume service).")
    hints = _hints(body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {})
    min_count = params.count_value(server.get("min_count", 1), "min_count", max_count_cap)
    max_count = params.count_value(server.get("max_count", min_count), "max_count", max_count_cap)
    if min_count > max_count:
        raise BadRequest("min_count must be <= max_count")
    networks = server_networks.parse_networks(
        "networks" in server, server.get("networks"), version or min_version(), max_count
    )
    description = server.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 255):
        raise BadRequest("Invalid input for field/attribute description.")
    version = version or min_version()
    hostname = None
    if version.at_least("2.90") and server.get("hostname") is not None:
        hostname = params.hostname_value(server["hostname"], fqdn=version.at_least("2.94"))
    requested_host = requested_node = None
    if version.at_least("2.74"):
        requested_host = params.host_value(server.get("host"))
        requested_node = params.host_value(server.get("hypervisor_hostname"), "hypervisor_hostname")
    return servers.CreateRequest(
        name=params.name_value(server["name"]),
        hostname=hostname,
        requested_host=requested_host,
        requested_node=requested_node,
        flavor_ref=_ref(server["flavorRef"], "flavorRef"),
        image_ref=_ref(server.get("imageRef", ""), "imageRef"),
        availability_zone=params.optional_name(server.get("availability_zone"), "availability_zone"),
        metadata=servers.validate_metadata(server.get("metadata", {})),
        key_name=params.optional_name(server.get("key_name"), "key_name"),
        user_data=_optional_string(server, "user_data", servers.MAX_USER_DATA),
        description=description,
        scheduler_hints=hints,
        min_count=min_count,
        max_count=max_count,
        access_ip_v4=_optional_string(server, "accessIPv4") or "",
        access_ip_v6=_optional_string(server, "accessIPv6") or "",
        config_drive=params.strict_bool(server.get("config_drive") or False, "config_drive"),
        tags=_tags(server.get("tags"), version or min_version()),
        return_reservation_id=params.strict_bool(
            server.get("return_reservation_id") or False, "return_reservation_id"
        ),
        networks=networks,
        security_groups=server_networks.parse_security_groups(server.get("security_groups")),
    )


@router.post("/v2.1/servers", status_code=202, openapi_extra=json_body(schemas.SERVER_CREATE))
def create_server(
    request: Request,
    body: dict[str, Any] = Body(...),
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> JSONResponse:
    req = parse_create(body, rt.settings.max_servers_per_request, version)
    # The password asked for, or one made up, goes to the guest's metadata (as Nova's, whatever
    # enable_admin_password); the response shows it only when enable_admin_password is set.
    req.admin_pass = _optional_string(body["server"], "adminPass") or secrets.token_urlsafe(9)
    with rt.db.transaction() as session:
        created = servers.create(session, ctx, req)
    rt.waker.publish(SCHEDULER_KEY)
    if req.return_reservation_id:
        return JSONResponse({"reservation_id": created[0].reservation_id}, status_code=202)
    admin_pass = req.admin_pass if rt.settings.enable_admin_password else None
    first = created[0]
    return JSONResponse(
        {"server": view.created(first, base_url(request), admin_pass, req.security_groups)},
        status_code=202,
        headers={"Location": f"{base_url(request)}/compute/v2.1/servers/{first.uuid}"},
    )


def _list_query(request: Request, ctx: RequestContext, version: Microversion) -> servers.ListQuery:
    params = request.query_params
    if version.at_least("2.75"):
        servers.check_list_params(params.keys())
    # 2.83 gives non-admins the filters availability_zone, config_drive, key_name, created_at,
    # launched_at, terminated_at, power_state, task_state, vm_state, progress and user_id;
    # before, they are an admin's alone (Nova ignores a non-admin's).
    owner_filters = ctx.is_admin or version.at_least("2.83")

    def owner_filter(name: str) -> str | None:
        return params.get(name) if owner_filters else None

    q = servers.ListQuery()
    page = page_params(params.get("limit"), params.get("marker"), maximum=MAX_INT)
    q.limit, q.marker = page.limit, params.get("marker")
    q.name = params.get("name")
    q.status = params.get("status")
    q.host = params.get("host")
    q.flavor = params.get("flavor")
    q.image = params.get("image")
    q.reservation_id = params.get("reservation_id")
    q.availability_zone = owner_filter("availability_zone")
    q.user_id = owner_filter("user_id")
    q.key_name = owner_filter("key_name")
    q.vm_state = owner_filter("vm_state")
    q.task_state = owner_filter("task_state")
    if owner_filters:
        q.config_drive = params.get("config_drive")
        q.power_state = _int_param(params, "power_state")
        q.progress = _int_param(params, "progress")
        q.created_at = time_param(params, "created_at")
        q.launched_at = time_param(params, "launched_at")
        q.terminated_at = time_param(params, "terminated_at")
    q.all_tenants = (
        params.get("all_tenants", "false").lower() not in ("0", "false", "off", "no")
        if "all_tenants" in params
        else False
    )
    if params.get("all_tenants") == "":
        q.all_tenants = True
    q.project_id = params.get("project_id") or params.get("tenant_id")
    if q.project_id and ctx.is_admin:
        q.all_tenants = True
    q.deleted = params.get("deleted", "false").lower() in ("1", "true", "yes")
    q.changes_since = time_param(params, "changes-since")
    # Nova's filters of a later version reach an admin's search at every version (its schema
    # lets unknown parameters through before 2.75 and only a non-admin's are pruned).
    if ctx.is_admin or version.at_least("2.66"):
        q.changes_before = time_param(params, "changes-before")
        if q.changes_since and q.changes_before and q.changes_since > q.changes_before:
            raise BadRequest("The value of changes-since must be less than or equal to changes-before.")
    if (ctx.is_admin or version.at_least("2.73")) and "locked" in params:
        q.locked = strict_bool(params["locked"], "locked")
    if ctx.is_admin or version.at_least("2.90"):
        q.hostname = params.get("hostname")
    q.sort_key = params.get("sort_key", "created_at")
    if q.sort_key == "locked" and version.before("2.73"):
        raise BadRequest(f"Invalid sort_key {q.sort_key}")
    q.sort_dir = params.get("sort_dir", "desc")
    q.tags = TagFilter.parse(dict(params))
    return q


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    if name not in params:
        return None
    value = int_text(params[name], -MAX_INT - 1, MAX_INT)  # the column's range
    if value is None:
        raise BadRequest(f"Invalid input for query parameters {name}. Value: {params[name]}.")
    return value


def _page_links(request: Request, rows: list[Any], limit: int | None, kind: str) -> list[dict[str, str]]:
    if limit is None or len(rows) < limit or not rows:
        return []
    params = dict(request.query_params)
    params["marker"] = rows[-1].uuid
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return [{"rel": "next", "href": f"{base_url(request)}/compute/v2.1/{kind}?{query}"}]


def _json(body: dict[str, Any]) -> Response:
    """A page of up to 1,000 servers, encoded by orjson (the views hold only JSON types)."""
    return Response(orjson.dumps(body), media_type="application/json")


def _list(
    request: Request, ctx: RequestContext, rt: Runtime, detailed: bool, version: Microversion
) -> dict[str, Any]:
    q = _list_query(request, ctx, version)
    user_data = detailed and ctx.is_admin and version.at_least("2.3")
    with rt.db.read() as session:
        fields = view.DETAIL_FIELDS if detailed else servers.BRIEF_FIELDS
        rows = servers.list_servers(session, ctx, q, fields, user_data)
        up = servers.hosts_up(session, {r.host for r in rows if r.host}) if detailed and ctx.is_admin else {}
        networking = (
            server_networks.of_servers(session, [r.uuid for r in rows])
            if detailed
            else server_networks.NO_NETWORKING
        )
    base = base_url(request)
    if detailed:
        items = view.detail_page(rows, base, version, ctx, up, networking)
    else:
        items = [view.brief(r, base) for r in rows]
    body: dict[str, Any] = {"servers": items}
    next_links = _page_links(request, rows, q.limit, "servers/detail" if detailed else "servers")
    if next_links:
        body["servers_links"] = next_links
    return body


@router.get("/v2.1/servers", openapi_extra=schemas.SERVER_LIST_QUERY)
def list_servers(
    request: Request,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> Response:
    return _json(_list(request, ctx, rt, False, version))


@router.get("/v2.1/servers/detail", openapi_extra=schemas.SERVER_LIST_QUERY)
def list_servers_detail(
    request: Request,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> Response:
    return _json(_list(request, ctx, rt, True, version))


@router.get("/v2.1/servers/{server_id}")
def show_server(
    server_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    with rt.db.read() as session:
        instance = servers.get(session, ctx, server_id)
        up = servers.hosts_up(session, {instance.host}) if instance.host and ctx.is_admin else {}
        networking = server_networks.of_servers(session, [instance.uuid])
    body = view.detail(instance, base_url(request), version, ctx, up.get(instance.host or ""), networking)
    return {"server": body}


@router.get("/v2.1/servers/{server_id}/topology")
def show_topology(
    server_id: str,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    """2.78: the server's NUMA topology. kumo pins no guest to NUMA nodes, so every server has
    none: Nova's answer for a server without a NUMA topology."""
    require(version, "2.78")
    with rt.db.read() as session:
        servers.get(session, ctx, server_id)
    return {"nodes": [], "pagesize_kb": None}


@router.put("/v2.1/servers/{server_id}", openapi_extra=json_body(schemas.SERVER_UPDATE))
def update_server(
    server_id: str,
    request: Request,
    body: dict[str, Any] = Body(...),
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    changes = _obj(body, "server")
    allowed = {"name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"}
    if version.at_least("2.19"):
        allowed.add("description")
    if version.at_least("2.90"):
        allowed.add("hostname")
    unknown = set(changes) - allowed
    if unknown:
        raise BadRequest(
            f"Additional properties are not allowed ({', '.join(sorted(unknown))} were unexpected)"
        )
    if "name" in changes:
        params.name_value(changes["name"])
    for key in ("accessIPv4", "accessIPv6"):
        if key in changes:
            _optional_string(changes, key)
    if changes.get("description") is not None:
        params.string_value(changes["description"], "description", printable=False)
    if "hostname" in changes:
        changes["hostname"] = params.hostname_value(changes["hostname"], fqdn=version.at_least("2.94"))
    with rt.db.transaction() as session:
        instance = servers.update(session, ctx, server_id, changes)
        networking = server_networks.of_servers(session, [instance.uuid])
        up = servers.hosts_up(session, {instance.host}) if instance.host and ctx.is_admin else {}
    body = view.updated(instance, base_url(request), version, ctx, networking, up.get(instance.host or ""))
    return {"server": body}


@router.delete("/v2.1/servers/{server_id}", status_code=204)
def delete_server(
    server_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        _, host = servers.delete(session, ctx, server_id)
    if host:
        rt.waker.publish(host_key(host))
    return Response(status_code=204)


# -- metadata ---------------------------------------------------------------------------------
@router.get("/v2.1/servers/{server_id}/metadata")
def get_metadata(
    server_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        return {"metadata": dict(servers.get(session, ctx, server_id).metadata_ or {})}


def _write_metadata(
    rt: Runtime, ctx: RequestContext, server_id: str, new: dict[str, str], replace: bool
) -> dict[str, str]:
    with rt.db.transaction() as session:
        return servers.set_metadata(session, ctx, server_id, new, replace)


@router.post("/v2.1/servers/{server_id}/metadata", openapi_extra=json_body(schemas.METADATA_SET))
def merge_metadata(
    server_id: str,
    body: dict[str, Any] = Body(...),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    return {
        "metadata": _write_metadata(
            rt, ctx, server_id, servers.validate_metadata(body.get("metadata")), False
        )
    }


@router.put("/v2.1/servers/{server_id}/metadata", openapi_extra=json_body(schemas.METADATA_SET))
def replace_metadata(
    server_id: str,
    body: dict[str, Any] = Body(...),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    return {
        "metadata": _write_metadata(rt, ctx, server_id, servers.validate_metadata(body.get("metadata")), True)
    }


@router.get("/v2.1/servers/{server_id}/metadata/{key}")
def get_metadata_item(
    server_id: str, key: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        metadata = servers.get(session, ctx, server_id).metadata_ or {}
    if key not in metadata:
        raise NotFound("Metadata item was not found")
    return {"meta": {key: metadata[key]}}


@router.put("/v2.1/servers/{server_id}/metadata/{key}", openapi_extra=json_body(schemas.METADATA_ITEM))
def set_metadata_item(
    server_id: str,
    key: str,
    body: dict[str, Any] = Body(...),
    ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    meta = servers.validate_metadata(body.get("meta"))
    if list(meta) != [key]:
        raise BadRequest("Request body and URI mismatch")
    _write_metadata(rt, ctx, server_id, meta, False)
    return {"meta": meta}


@router.delete("/v2.1/servers/{server_id}/metadata/{key}", status_code=204)
def delete_metadata_item(
    server_id: str, key: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        servers.delete_metadata_key(session, ctx, server_id, key)
    return Response(status_code=204)
