"""Serial console URLs (os-getSerialConsole, POST /servers/{id}/remote-consoles) and their
tokens, as Nova's nova-serialproxy: the URL is a ws:// address of kumo's own websocket proxy
(kumo.compute.routes.serial_proxy) carrying a random token; the proxy redeems the token once
and relays the websocket to the TCP endpoint of the guest's serial console on its host.

The endpoint is asked of the host's agent with a `serial_console` question task (its driver
knows it: the libvirt guest's TCP chardev, the fake driver's echo console), as the console log
is (kumo.compute.console).

Invariants: only the token's SHA-256 is stored; a token is redeemed at most once (its row is
deleted by the transaction that redeems it) and never after it expired; expired rows are
swept whenever a new token is issued.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import servers
from kumo.compute.lifecycle_apply import spec
from kumo.compute.models import ComputeHost, ConsoleToken
from kumo.compute.node_hosts import BAREMETAL_HYPERVISOR_TYPE, may_be_node
from kumo.compute.states import VmState
from kumo.db import Database, utcnow
from kumo.errors import BadRequest, Conflict
from kumo.work import queue
from kumo.work.kinds import SerialConsolePayload, TaskKind

WAIT_SECONDS = 15.0
PROXY_PATH = "/serial-console/"  # where the websocket proxy listens, on the API's address


@dataclass(frozen=True)
class Endpoint:
    """A redeemed token: the guest's console on its host."""

    instance_uuid: str
    host: str
    port: int


def check_request(body: Any) -> None:
    """A remote-consoles body asking for the serial console (the only protocol kumo serves)."""
    console = body.get("remote_console") if isinstance(body, dict) else None
    if not isinstance(console, dict) or set(console) - {"protocol", "type"}:
        raise BadRequest("Invalid input for field/attribute remote_console.")
    protocol, kind = console.get("protocol"), console.get("type")
    if protocol not in ("vnc", "spice", "serial", "rdp", "mks"):
        raise BadRequest(f"Invalid input for field/attribute protocol. Value: {protocol}.")
    if protocol != "serial" or kind != "serial":
        raise BadRequest(f"Unavailable console type {kind}: kumo serves only the serial console.")


def request_endpoint(session: Session, ctx: RequestContext, server_id: str) -> tuple[str, str, str]:
    """Ask the server's host where its serial console is: (task id, host to wake, server uuid).
    409 unless the server is ACTIVE on a hypervisor."""
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id)
    if instance.host is None or instance.vm_state != VmState.ACTIVE:
        raise Conflict(f"Instance {instance.uuid} is not ready: its serial console needs it ACTIVE.")
    kind = session.scalar(select(ComputeHost.hypervisor_type).where(ComputeHost.name == instance.host))
    if may_be_node(instance.host) or kind == BAREMETAL_HYPERVISOR_TYPE:
        raise Conflict(
            f"Instance {instance.uuid} is a baremetal server: kumo serves no serial console for it."
        )
    task = queue.enqueue(
        session,
        instance.host,
        TaskKind.SERIAL_CONSOLE,
        None,
        SerialConsolePayload(spec(instance)),
        ctx.request_id,
    )
    return task.id, instance.host, instance.uuid


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _endpoint(result: dict[str, Any]) -> tuple[str, int]:
    host, port = result.get("host"), result.get("port")
    if not isinstance(host, str) or not isinstance(port, int) or isinstance(port, bool):
        raise Conflict("The host's agent gave no serial console endpoint.")
    return host, port


def ws_base(api_base: str) -> str:
    """The websocket address of the API at `api_base` (http → ws, https → wss)."""
    if api_base.startswith("https://"):
        return "wss://" + api_base[len("https://") :]
    return "ws://" + api_base.removeprefix("http://")


def issue_url(
    db: Database,
    task_id: str,
    instance_uuid: str,
    api_base: str,
    ttl_seconds: int,
    now: dt.datetime | None = None,
) -> str:
    """Wait for the host's answer, store a token for its endpoint, and return the URL."""
    host, port = _endpoint(queue.await_answer(db, task_id, WAIT_SECONDS, "Serial console"))
    token = secrets.token_urlsafe(32)
    moment = now or utcnow()
    with db.transaction() as session:
        session.execute(delete(ConsoleToken).where(ConsoleToken.expires_at <= moment))
        session.add(
            ConsoleToken(
                token_hash=_hash(token),
                instance_uuid=instance_uuid,
                host=host,
                port=port,
                expires_at=moment + dt.timedelta(seconds=ttl_seconds),
            )
        )
    return f"{ws_base(api_base)}{PROXY_PATH}?token={token}"


def redeem(db: Database, token: str, now: dt.datetime | None = None) -> Endpoint | None:
    """The endpoint a token stands for, once: None for an unknown, used or expired token."""
    if not token:
        return None
    with db.transaction() as session:
        row = session.get(ConsoleToken, _hash(token), with_for_update=True)
        if row is None:
            return None
        endpoint = Endpoint(row.instance_uuid, row.host, row.port)
        expired = row.expires_at <= (now or utcnow())
        session.delete(row)
    return None if expired else endpoint
