"""A server's networking as Nova shows it: /servers/{id}/ips, /ips/{network_label},
/os-security-groups and /os-interface (list, show, attach, detach)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import interfaces, schemas, server_networks, servers
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion
from kumo.errors import NotFound
from kumo.runtime import Runtime
from kumo.work.queue import host_key

router = APIRouter(prefix="/compute")


@router.get("/v2.1/servers/{server_id}/ips")
def list_ips(
    server_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        servers.get(session, ctx, server_id)
        return {"addresses": server_networks.ips(session, server_id)}


@router.get("/v2.1/servers/{server_id}/ips/{network_label}")
def show_ips(
    server_id: str, network_label: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        servers.get(session, ctx, server_id)
        found = server_networks.ips(session, server_id)
    if network_label not in found:
        raise NotFound("Instance is not a member of specified network")
    return {network_label: found[network_label]}


@router.get("/v2.1/servers/{server_id}/os-security-groups")
def list_security_groups(
    server_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        servers.get(session, ctx, server_id)
        return {"security_groups": server_networks.security_groups(session, server_id)}


def _tagged(attachment: dict[str, Any], version: Microversion) -> dict[str, Any]:
    """Each attachment's device `tag` (null when none) from 2.70; before, no such key."""
    if version.before("2.70"):
        attachment.pop("tag", None)
    return attachment


@router.get("/v2.1/servers/{server_id}/os-interface")
def list_interfaces(
    server_id: str,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    with rt.db.read() as session:
        servers.get(session, ctx, server_id)
        found = server_networks.interfaces(session, server_id)
    return {"interfaceAttachments": [_tagged(a, version) for a in found]}


@router.get("/v2.1/servers/{server_id}/os-interface/{port_id}")
def show_interface(
    server_id: str,
    port_id: str,
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    with rt.db.read() as session:
        servers.get(session, ctx, server_id)
        found = server_networks.find_interface(session, server_id, port_id)
    return {"interfaceAttachment": _tagged(found, version)}


@router.post("/v2.1/servers/{server_id}/os-interface", openapi_extra=json_body(schemas.INTERFACE_ATTACH))
def attach_interface(
    server_id: str,
    body: Any = Body(None),
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    with rt.db.transaction() as session:
        attachment, host = interfaces.attach(session, ctx, server_id, body)
    rt.waker.publish(host_key(host))
    return {"interfaceAttachment": _tagged(attachment, version)}


@router.delete("/v2.1/servers/{server_id}/os-interface/{port_id}", status_code=202)
def detach_interface(
    server_id: str, port_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    with rt.db.transaction() as session:
        host = interfaces.detach(session, ctx, server_id, port_id)
    rt.waker.publish(host_key(host))
    return Response(status_code=202)
