"""A server's networking as Nova shows it: /servers/{id}/ips, /ips/{network_label},
/os-security-groups and the read side of /os-interface."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.compute import server_networks, servers
from kumo.errors import NotFound
from kumo.runtime import Runtime

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


@router.get("/v2.1/servers/{server_id}/os-interface")
def list_interfaces(
    server_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        servers.get(session, ctx, server_id)
        return {"interfaceAttachments": server_networks.interfaces(session, server_id)}


@router.get("/v2.1/servers/{server_id}/os-interface/{port_id}")
def show_interface(
    server_id: str, port_id: str, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        servers.get(session, ctx, server_id)
        return {"interfaceAttachment": server_networks.find_interface(session, server_id, port_id)}
