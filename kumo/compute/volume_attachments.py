"""A server's volume attachments (Nova's os-volume_attachments): kumo has no block storage
service, so a server that exists has none, naming a volume is a 404, and so is attaching one
(no volume can be found: Nova's answer for a volume its Cinder does not know). The bodies are
still checked as Nova's schemas check them, per microversion: `tag` from 2.49,
`delete_on_termination` from 2.79 on attach and 2.85 on update."""

from __future__ import annotations

from typing import Any, NoReturn

from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import params, servers
from kumo.compute.microversion import Microversion
from kumo.errors import BadRequest, NotFound


def list_attachments(session: Session, ctx: RequestContext, server_id: str) -> list[dict[str, Any]]:
    """The server's attachments (none); NotFound when the caller cannot see the server."""
    servers.get(session, ctx, server_id)
    return []


def get_attachment(session: Session, ctx: RequestContext, server_id: str, volume_id: str) -> NoReturn:
    servers.get(session, ctx, server_id)
    raise NotFound(f"Instance {server_id} is not attached to volume {volume_id}.")


def _attachment_body(body: Any, version: Microversion, update: bool) -> str:
    """The `volumeAttachment` of an attach (or, `update`, a swap/update): its volumeId."""
    item = params.body_object(body, "volumeAttachment")
    allowed = {"volumeId", "device"}
    if version.at_least("2.49") and not update:
        allowed.add("tag")
    if version.at_least("2.85" if update else "2.79"):
        allowed.add("delete_on_termination")
    if update and version.at_least("2.85"):
        allowed |= {"id", "serverId", "device", "tag", "attachment_id", "bdm_uuid"}
    params.reject_unknown(item, allowed, "volumeAttachment")
    volume_id = item.get("volumeId")
    if not isinstance(volume_id, str) or not params.is_uuid_like(volume_id):
        raise BadRequest(f"Invalid input for field/attribute volumeId. Value: {volume_id!r}. is not a 'uuid'")
    if "delete_on_termination" in item:
        params.strict_bool(item["delete_on_termination"], "delete_on_termination")
    return volume_id


def attach(
    session: Session, ctx: RequestContext, server_id: str, body: Any, version: Microversion
) -> NoReturn:
    """POST: no volume service, so the volume named cannot be found."""
    ctx.require_writer()
    servers.get(session, ctx, server_id)
    volume_id = _attachment_body(body, version, update=False)
    raise NotFound(f"Volume {volume_id} could not be found.")


def update(
    session: Session, ctx: RequestContext, server_id: str, volume_id: str, body: Any, version: Microversion
) -> NoReturn:
    """PUT (swap, or 2.85's delete_on_termination): the server has no volume attached."""
    ctx.require_writer()
    servers.get(session, ctx, server_id)
    _attachment_body(body, version, update=True)
    raise NotFound(f"Instance {server_id} is not attached to volume {volume_id}.")


def detach(session: Session, ctx: RequestContext, server_id: str, volume_id: str) -> NoReturn:
    ctx.require_writer()
    get_attachment(session, ctx, server_id, volume_id)
