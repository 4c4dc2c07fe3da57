"""A server's volume attachments (Nova's os-volume_attachments), read-only: kumo has no block
storage service, so a server that exists has none, and naming a volume is a 404."""

from __future__ import annotations

from typing import Any, NoReturn

from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import servers
from kumo.errors import NotFound


def list_attachments(session: Session, ctx: RequestContext, server_id: str) -> list[dict[str, Any]]:
    """The server's attachments (none); NotFound when the caller cannot see the server."""
    servers.get(session, ctx, server_id)
    return []


def get_attachment(session: Session, ctx: RequestContext, server_id: str, volume_id: str) -> NoReturn:
    servers.get(session, ctx, server_id)
    raise NotFound(f"Instance {server_id} is not attached to volume {volume_id}.")
