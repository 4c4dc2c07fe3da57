"""A short path for claims: `PUT /placement/allocations/{consumer}` without FastAPI's routing
and dependency machinery.

A claim is the hottest Placement write (one per server a scheduler places). Through the app's
route table it paid, besides its own work, a scan of ~170 routes before its own, FastAPI's
dependency resolution and request wrapping: py-spy showed that framework share at about two
thirds of the API's CPU per claim. This ASGI middleware answers the well-formed, authorized
request itself with the very same code (microversion parse, token check, body validation of
allocation_body.allocation_write, allocations.replace_allocations in one transaction, the same error
body and headers as PlacementRoute). Anything it does not take on as is (a bad or missing
token, a non-admin, a bad microversion, a body that is not a JSON object with a JSON content
type, or one that fails validation) is handed to the app unchanged, body replayed, so every
error answer stays the one the full route gives.
"""

from __future__ import annotations

from typing import Any

import anyio
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kumo.api.edge import replay
from kumo.errors import KumoError
from kumo.placement.api import allocations as allocations_domain
from kumo.placement.api import microversion as mv
from kumo.placement.api.allocation_body import allocation_write, consumer_uuid
from kumo.placement.api.responses import finish, no_content, placement_error
from kumo.placement.api.routes import router
from kumo.runtime import Runtime

PREFIX = "/placement/allocations/"


class ClaimFastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "PUT"
            or not path.startswith(PREFIX)
            or "/" in path[len(PREFIX) :]
        ):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        taken = _take(scope, path[len(PREFIX) :], body)
        if taken is None:
            request: Message = {"type": "http.request", "body": body, "more_body": False}
            await self.app(scope, replay(request, receive), send)
            return
        version, write = taken
        # The full route's label in the request metrics (RequestMiddleware reads scope["route"]).
        scope["route"] = self._claim_route()
        rt: Runtime = scope["app"].state.runtime
        try:
            await anyio.to_thread.run_sync(_replace, rt, write)
            response = no_content()
        except KumoError as exc:
            response = placement_error(path, exc)
        await finish(response, version, "PUT")(scope, receive, send)

    def _claim_route(self) -> Any:
        if self._route is None:
            self._route = next(
                r
                for r in router.routes
                if getattr(r, "path", None) == "/placement/allocations/{consumer}"
                and "PUT" in getattr(r, "methods", ())
            )
        return self._route


def _replace(rt: Runtime, write: allocations_domain.AllocationWrite) -> None:
    """The claim in a transaction of its own, through the database's store (as the full route)."""
    with rt.db.transaction() as session:
        allocations_domain.replace_allocations(session, [write])


def _take(
    scope: Scope, consumer: str, body: bytes
) -> tuple[mv.Version, allocations_domain.AllocationWrite] | None:
    """(microversion, the write) when the request is one the full route would carry out as
    is; None for anything else (the full route then answers it, errors included)."""
    headers: dict[bytes, bytes] = dict(scope["headers"])
    content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    token = headers.get(b"x-auth-token")
    if content_type != b"application/json" or not body or not token:
        return None
    try:
        raw_version = headers.get(b"openstack-api-version")
        version = mv.parse(raw_version.decode("latin-1") if raw_version is not None else None)
        data = orjson.loads(body)  # accepts only strict JSON, which the stdlib parses the same
        if not isinstance(data, dict):
            return None
        rt: Runtime = scope["app"].state.runtime
        if "admin" not in rt.tokens.verify(token.decode("latin-1")).roles:
            return None
        return version, allocation_write(consumer_uuid(consumer), data, version, "body")
    except (KumoError, orjson.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: nothing more to read
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
