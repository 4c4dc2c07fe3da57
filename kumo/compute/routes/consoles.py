"""POST /v2.1/servers/{id}/remote-consoles (2.6+; the serial console only) and the websocket
proxy its URLs point at (kumo's nova-serialproxy: kumo.compute.serial_console)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, Body, Depends, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.compute import schemas, serial_console
from kumo.compute.deps import microversion
from kumo.compute.microversion import Microversion
from kumo.compute.routes.servers import base_url
from kumo.errors import NotFound
from kumo.runtime import Runtime
from kumo.work.queue import host_key

router = APIRouter(prefix="/compute")
proxy_router = APIRouter()
log = logging.getLogger("kumo.api")
CONNECT_TIMEOUT = 5.0
CHUNK = 4096


def serial_url(server_id: str, request: Request, ctx: RequestContext, rt: Runtime) -> str:
    """Ask the server's host for its console's endpoint and issue a token URL for it."""
    with rt.db.transaction() as session:
        task_id, host, instance_uuid = serial_console.request_endpoint(session, ctx, server_id)
    rt.waker.publish(host_key(host))
    return serial_console.issue_url(
        rt.db, task_id, instance_uuid, base_url(request), rt.settings.console_token_ttl_seconds
    )


@router.post("/v2.1/servers/{server_id}/remote-consoles", openapi_extra=json_body(schemas.REMOTE_CONSOLE))
def create_remote_console(
    server_id: str,
    request: Request,
    body: dict[str, Any] = Body(...),
    ctx: RequestContext = Depends(context),
    version: Microversion = Depends(microversion),
    rt: Runtime = Depends(runtime),
) -> JSONResponse:
    if not version.at_least("2.6"):
        raise NotFound("The resource could not be found.")
    serial_console.check_request(body)
    url = serial_url(server_id, request, ctx, rt)
    return JSONResponse({"remote_console": {"protocol": "serial", "type": "serial", "url": url}})


@proxy_router.websocket(serial_console.PROXY_PATH)
async def serial_proxy(websocket: WebSocket) -> None:
    """Redeem the URL's token (once), then relay bytes both ways between the websocket and the
    guest's console until either side closes. A bad, used or expired token: closed (1008)."""
    rt: Runtime = websocket.app.state.runtime
    token = websocket.query_params.get("token", "")
    endpoint = await run_in_threadpool(serial_console.redeem, rt.db, token)
    offered = websocket.scope.get("subprotocols") or []
    if endpoint is None:
        await websocket.close(code=1008, reason="invalid or expired token")
        return
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.host, endpoint.port), CONNECT_TIMEOUT
        )
    except (OSError, TimeoutError):
        log.warning(
            "serial console of %s at %s:%s unreachable", endpoint.instance_uuid, endpoint.host, endpoint.port
        )
        await websocket.close(code=1011, reason="console unreachable")
        return
    await websocket.accept(subprotocol="binary" if "binary" in offered else None)
    await _relay(websocket, reader, writer)


async def _relay(websocket: WebSocket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    async def to_guest() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes") or (message.get("text") or "").encode()
            writer.write(data)
            await writer.drain()

    async def to_client() -> None:
        while chunk := await reader.read(CHUNK):
            await websocket.send_bytes(chunk)

    tasks = [asyncio.ensure_future(to_guest()), asyncio.ensure_future(to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError, RuntimeError):
                await task
        writer.close()
        with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect):
            await websocket.close()
