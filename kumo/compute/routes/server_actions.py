"""POST /v2.1/servers/{id}/action: one handler per action name, each a domain call."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import (
    console,
    day2,
    evacuate,
    interfaces,
    moves,
    params,
    schemas,
    server_networks,
    server_ops,
    servers,
    shelving,
)
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion
from kumo.compute.routes.consoles import serial_url
from kumo.compute.routes.servers import base_url
from kumo.compute.views import servers as view
from kumo.compute.workers import SCHEDULER_KEY
from kumo.errors import BadRequest, NotFound
from kumo.runtime import Runtime
from kumo.work.queue import host_key

router = APIRouter(prefix="/compute")

# Each returns the host whose agent has new work (None: nothing to wake).
Handler = Callable[[Session, RequestContext, str, Any, Microversion], str | None]


def _start(s: Session, ctx: RequestContext, sid: str, _: Any, __: Microversion) -> str | None:
    return server_ops.start(s, ctx, sid)


def _stop(s: Session, ctx: RequestContext, sid: str, _: Any, __: Microversion) -> str | None:
    return server_ops.stop(s, ctx, sid)


def _reboot(s: Session, ctx: RequestContext, sid: str, body: Any, _: Microversion) -> str | None:
    if not isinstance(body, dict) or "type" not in body:
        raise BadRequest("Invalid input for field/attribute reboot. 'type' is a required property")
    reboot_type = body["type"]
    if not isinstance(reboot_type, str) or reboot_type.upper() not in ("SOFT", "HARD"):
        raise BadRequest(
            f"Invalid input for field/attribute type. Value: {reboot_type!r}. "
            "is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"
        )
    return server_ops.reboot(s, ctx, sid, reboot_type.upper())


def _migrate(s: Session, ctx: RequestContext, sid: str, body: Any, version: Microversion) -> str | None:
    host = (
        params.host_value(body.get("host")) if isinstance(body, dict) and version.at_least("2.56") else None
    )
    return moves.migrate(s, ctx, sid, live=False, dest_host=host)


def _live_migrate(s: Session, ctx: RequestContext, sid: str, body: Any, version: Microversion) -> str | None:
    if not isinstance(body, dict) or "host" not in body:
        raise BadRequest("Invalid input for field/attribute os-migrateLive. 'host' is a required property")
    if "force" in body and version.at_least("2.68"):  # 2.68 removes the forced live migration
        params.reject_unknown(body, {"host", "block_migration", "disk_over_commit"}, "os-migrateLive")
    return moves.migrate(s, ctx, sid, live=True, dest_host=params.host_value(body["host"]))


def _confirm(s: Session, ctx: RequestContext, sid: str, _: Any, __: Microversion) -> str | None:
    moves.confirm_resize(s, ctx, sid)
    return None


def _revert(s: Session, ctx: RequestContext, sid: str, _: Any, __: Microversion) -> str | None:
    return moves.revert_resize(s, ctx, sid)


def _lock(s: Session, ctx: RequestContext, sid: str, body: Any, version: Microversion) -> str | None:
    """2.73: `{"lock": {"locked_reason": "..."}}` (or null); before, the body is not read."""
    reason = None
    if version.at_least("2.73") and body is not None:
        if not isinstance(body, dict):
            raise BadRequest(
                f"Invalid input for field/attribute lock. Value: {body!r}. is not of type 'object'"
            )
        params.reject_unknown(body, {"locked_reason"}, "lock")
        if "locked_reason" in body:
            reason = params.string_value(body["locked_reason"], "locked_reason", printable=False)
    server_ops.set_locked(s, ctx, sid, True, reason)
    return None


def _unlock(s: Session, ctx: RequestContext, sid: str, _: Any, __: Microversion) -> str | None:
    server_ops.set_locked(s, ctx, sid, False)
    return None


def _reset_state(s: Session, ctx: RequestContext, sid: str, body: Any, _: Microversion) -> str | None:
    if not isinstance(body, dict) or "state" not in body:
        raise BadRequest("Invalid input for field/attribute os-resetState. 'state' is a required property")
    server_ops.reset_state(s, ctx, sid, body["state"])
    return None


def _force_delete(s: Session, ctx: RequestContext, sid: str, _: Any, __: Microversion) -> str | None:
    return servers.delete(s, ctx, sid, force=True)[1]


def _restore(s: Session, ctx: RequestContext, sid: str, _: Any, __: Microversion) -> str | None:
    server_ops.restore(s, ctx, sid)
    return None


def _add_group(s: Session, ctx: RequestContext, sid: str, body: Any, _: Microversion) -> str | None:
    interfaces.set_security_group(s, ctx, sid, body, add=True)
    return None


def _remove_group(s: Session, ctx: RequestContext, sid: str, body: Any, _: Microversion) -> str | None:
    interfaces.set_security_group(s, ctx, sid, body, add=False)
    return None


def _versions(version: Microversion, action: str, since: str | None = None, until: str | None = None) -> None:
    """An action outside the microversions that have it is a 404, as Nova answers a method
    its version does not support (VersionNotFoundForAPIMethod)."""
    if (since is not None and not version.at_least(since)) or (
        until is not None and version.at_least(_next(until))
    ):
        raise NotFound(f"API version {version} is not supported on this method ({action}).")


def _next(text: str) -> str:
    major, minor = text.split(".")
    return f"{major}.{int(minor) + 1}"


def _simple(kind: str, since: str | None = None) -> Handler:
    """A day-2 action without a body (kumo.compute.day2.simple); `since`: its microversion."""

    def handler(s: Session, ctx: RequestContext, sid: str, _: Any, version: Microversion) -> str | None:
        _versions(version, kind, since=since)
        return day2.simple(s, ctx, sid, kind)

    return handler


def _resize(s: Session, ctx: RequestContext, sid: str, body: Any, _: Microversion) -> str | None:
    return day2.resize(s, ctx, sid, day2.parse_resize(body))


# Actions Nova answers 204 (done in the API), not 202.
NO_CONTENT = frozenset({"confirmResize"})

HANDLERS: dict[str, Handler] = {
    "os-start": _start,
    "os-stop": _stop,
    "reboot": _reboot,
    "migrate": _migrate,
    "os-migrateLive": _live_migrate,
    "confirmResize": _confirm,
    "revertResize": _revert,
    "lock": _lock,
    "unlock": _unlock,
    "os-resetState": _reset_state,
    "forceDelete": _force_delete,
    "restore": _restore,
    "addSecurityGroup": _add_group,
    "removeSecurityGroup": _remove_group,
    "pause": _simple("pause"),
    "unpause": _simple("unpause"),
    "suspend": _simple("suspend"),
    "resume": _simple("resume"),
    "unrescue": _simple("unrescue"),
    "trigger_crash_dump": _simple("trigger_crash_dump", since="2.17"),
    "resize": _resize,
}


@router.post("/v2.1/servers/{server_id}/action", openapi_extra=json_body(schemas.SERVER_ACTION))
def server_action(
    server_id: str,
    request: Request,
    body: dict[str, Any] = Body(...),
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> Response:
    if len(body) != 1:
        raise BadRequest("There is either no or more than one action in the request body.")
    name, args = next(iter(body.items()))
    if name == "rebuild":
        return _rebuild(server_id, request, args, ctx, version, rt)
    if name == "os-getConsoleOutput":
        return _console_output(server_id, args, ctx, rt)
    if name == "evacuate":
        return _evacuate(server_id, args, ctx, version, rt)
    if name == "rescue":
        return _rescue(server_id, args, ctx, rt)
    if name == "createImage":
        return _create_image(server_id, request, args, ctx, version, rt)
    if name == "createBackup":
        return _create_backup(server_id, request, args, ctx, version, rt)
    if name in SHELVING:
        return _shelving(name, server_id, args, ctx, version, rt)
    if name == "os-getSerialConsole":
        _versions(version, name, until="2.5")  # Nova: remote-consoles from 2.6
        return _serial_console(server_id, request, args, ctx, rt)
    handler = HANDLERS.get(name)
    if handler is None:
        raise BadRequest(f"Unsupported server action {name!r}.")
    with rt.db.transaction() as session:
        host = handler(session, ctx, server_id, args, version)
    if host:
        rt.waker.publish(host_key(host))
    return Response(status_code=204 if name in NO_CONTENT else 202)


def _console_output(server_id: str, args: Any, ctx: RequestContext, rt: Runtime) -> JSONResponse:
    length = console.parse_length(args)
    with rt.db.transaction() as session:
        task_id, host = console.request_output(session, ctx, server_id, length)
    rt.waker.publish(host_key(host))
    return JSONResponse({"output": console.collect_output(rt.db, task_id)})


def _check_rebuild(args: Any, version: Microversion) -> None:
    """The rebuild body's fields typed as Nova's schema types them (the domain reads them);
    `hostname` from 2.90 (a name of 2.94's form from it), ignored before as Nova's schema."""
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute rebuild.")
    if "hostname" in args:
        if version.before("2.90"):
            del args["hostname"]
        else:
            args["hostname"] = params.hostname_value(args["hostname"], fqdn=version.at_least("2.94"))
    params.string_value(args.get("imageRef"), "imageRef")
    if "name" in args:
        params.name_value(args["name"])
    for key in ("key_name", "accessIPv4", "accessIPv6"):
        if args.get(key) is not None:
            params.string_value(args[key], key)
    for key in ("description", "adminPass"):
        if args.get(key) is not None:
            params.string_value(args[key], key, printable=False)
    if args.get("user_data") is not None:
        params.string_value(args["user_data"], "user_data", max_length=65535)


def _rebuild(
    server_id: str, request: Request, args: Any, ctx: RequestContext, version: Microversion, rt: Runtime
) -> JSONResponse:
    _check_rebuild(args, version)
    with rt.db.transaction() as session:
        instance, host = server_ops.rebuild(session, ctx, server_id, args)
        networking = server_networks.of_servers(session, [instance.uuid])
        up = servers.hosts_up(session, {instance.host}) if instance.host and ctx.is_admin else {}
    rt.waker.publish(host_key(host))
    admin_pass = (
        (args.get("adminPass") or secrets.token_urlsafe(9)) if rt.settings.enable_admin_password else None
    )
    return JSONResponse(
        {
            "server": view.rebuilt(
                instance, base_url(request), version, ctx, admin_pass, networking, up.get(instance.host or "")
            )
        },
        status_code=202,
    )


def _evacuate(server_id: str, args: Any, ctx: RequestContext, version: Microversion, rt: Runtime) -> Response:
    """200, as Nova; before 2.14 the answer carries the admin password (when enabled)."""
    ctx.require_admin()
    req = evacuate.parse(args, version)
    with rt.db.transaction() as session:
        host = evacuate.evacuate(session, ctx, server_id, req)
    rt.waker.publish(host_key(host))
    if version.at_least(evacuate.NO_SHARED_STORAGE_VERSION):
        return Response(status_code=200)
    if not rt.settings.enable_admin_password:
        return JSONResponse({})
    # On shared storage the disk is kept, and with it its password: none to tell (Nova's null).
    password = None if req.on_shared_storage else req.admin_pass or secrets.token_urlsafe(9)
    return JSONResponse({"adminPass": password})


def _rescue(server_id: str, args: Any, ctx: RequestContext, rt: Runtime) -> JSONResponse:
    """200 with the rescue password, as Nova (an empty body when passwords are disabled)."""
    req = day2.parse_rescue(args)
    with rt.db.transaction() as session:
        host, password = day2.rescue(session, ctx, server_id, req, rt.settings.enable_admin_password)
    rt.waker.publish(host_key(host))
    return JSONResponse({} if password is None else {"adminPass": password})


@router.get("/v2.1/servers/{server_id}/diagnostics")
def server_diagnostics(
    server_id: str,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> JSONResponse:
    """Admin: the guest's diagnostics, asked of its host (2.48's shape from 2.48 on)."""
    with rt.db.transaction() as session:
        task_id, host = day2.request_diagnostics(session, ctx, server_id)
    rt.waker.publish(host_key(host))
    raw = day2.collect_diagnostics(rt.db, task_id)
    return JSONResponse(day2.diagnostics_view(raw, version.at_least("2.48")))


def _create_image(
    server_id: str, request: Request, args: Any, ctx: RequestContext, version: Microversion, rt: Runtime
) -> Response:
    """202, the image's URL in Location; from 2.45 the body {"image_id"} too (Nova)."""
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute createImage.")
    name = shelving.image_name(args.get("name"))
    metadata = shelving.image_metadata(args.get("metadata"))
    with rt.db.transaction() as session:
        woken = shelving.create_image(session, ctx, server_id, name, metadata)
    _wake(rt, woken.host)
    location = {"Location": f"{base_url(request)}/image/v2/images/{woken.image_id}"}
    if version.at_least("2.45"):
        return JSONResponse({"image_id": woken.image_id}, status_code=202, headers=location)
    return Response(status_code=202, headers=location)


def _create_backup(
    server_id: str, request: Request, args: Any, ctx: RequestContext, version: Microversion, rt: Runtime
) -> Response:
    """202; from 2.45 the body {"image_id"}, before it the image's compute URL in Location when
    `rotation` is above 0 (Nova)."""
    req = shelving.parse_backup(args)
    with rt.db.transaction() as session:
        woken = shelving.create_backup(session, ctx, server_id, req)
    _wake(rt, woken.host)
    if version.at_least("2.45"):
        return JSONResponse({"image_id": woken.image_id}, status_code=202)
    if req.rotation == 0:
        return Response(status_code=202)
    location = f"{base_url(request)}/compute/v2.1/images/{woken.image_id}"
    return Response(status_code=202, headers={"Location": location})


SHELVING = ("shelve", "shelveOffload", "unshelve")


def _shelving(
    name: str, server_id: str, args: Any, ctx: RequestContext, version: Microversion, rt: Runtime
) -> Response:
    # Nova reads no body for shelve and shelveOffload: null and {} (tempest sends {}) are the same
    if name != "unshelve" and args is not None and args != {}:
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {args}. None is expected")
    with rt.db.transaction() as session:
        if name == "shelve":
            woken = shelving.shelve(session, ctx, server_id, rt.settings.shelved_offload_time)
        elif name == "shelveOffload":
            woken = shelving.shelve_offload(session, ctx, server_id)
        else:
            where = shelving.parse_unshelve(args, version.at_least("2.77"), version.at_least("2.91"))
            woken = shelving.unshelve(session, ctx, server_id, where)
    _wake(rt, woken.host)
    return Response(status_code=202)


def _wake(rt: Runtime, host: str | None) -> None:
    """A host's agent has work, or (None) the scheduler has a server to place."""
    rt.waker.publish(host_key(host) if host else SCHEDULER_KEY)


def _serial_console(
    server_id: str, request: Request, args: Any, ctx: RequestContext, rt: Runtime
) -> JSONResponse:
    """The legacy os-getSerialConsole action: {"console": {"type": "serial", "url"}}."""
    if not isinstance(args, dict) or args.get("type") != "serial":
        raise BadRequest("Invalid input for field/attribute type. Value must be 'serial'.")
    url = serial_url(server_id, request, ctx, rt)
    return JSONResponse({"console": {"type": "serial", "url": url}})
