"""Request id, a service's own response headers (compute's microversion echo) and latency
metrics for every request (pure ASGI)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kumo.api.errors import error_response
from kumo.logs import request_id_var
from kumo.metrics import REQUEST_LATENCY

log = logging.getLogger("kumo.api")
# An incoming request id is kept only when it is one of ours (oslo.context's global request id
# rule): anything else, too long for the columns that keep it or not an id at all, is replaced.
_REQUEST_ID = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# A service's own headers on every answer under its path prefix: (the request's headers, names
# lowercased; the request id) -> the headers to add. It never raises: an unusable request header
# still gets an answer (the service's own route refuses it).
ResponseHeaders = Callable[[dict[str, str], str], list[tuple[bytes, bytes]]]


class RequestMiddleware:
    def __init__(self, app: ASGIApp, response_headers: Mapping[str, ResponseHeaders] | None = None) -> None:
        self.app = app
        self.response_headers = dict(response_headers or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-openstack-request-id", "")
        if not _REQUEST_ID.fullmatch(request_id):
            request_id = f"req-{uuid.uuid4()}"
        token = request_id_var.set(request_id)
        path: str = scope["path"]
        extra: list[tuple[bytes, bytes]] = [(b"x-openstack-request-id", request_id.encode())]
        for prefix, service_headers in self.response_headers.items():
            if path.startswith(prefix):
                extra += service_headers(headers, request_id)
        status_holder: dict[str, Any] = {"status": 500}
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if status_holder.get("started"):
                raise
            # Answered here, not by Starlette's ServerErrorMiddleware: that one re-raises after its
            # 500, and uvicorn then drops the connection, so clients saw a reset, not the fault.
            log.exception("unexpected error on %s %s", scope["method"], path)
            response = error_response(
                path,
                500,
                "An unexpected error prevented the server from fulfilling your request.",
                accept=headers.get("accept", ""),
            )
            await response(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            if scope.get("root_path") and route_path != "unmatched":
                route_path = scope["root_path"] + route_path
            REQUEST_LATENCY.labels(scope["method"], route_path, str(status_holder["status"])).observe(elapsed)
            if not path.startswith("/internal"):
                log.info(
                    "%s %s -> %s in %.1f ms",
                    scope["method"],
                    path if path.isprintable() else ascii(path),  # a refused "\n" forges no log line
                    status_holder["status"],
                    elapsed * 1000,
                )
            request_id_var.reset(token)
