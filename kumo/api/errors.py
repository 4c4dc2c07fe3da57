"""The one place where exceptions become OpenStack error bodies, per service."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from kumo.errors import KumoError
from kumo.logs import request_id_var

log = logging.getLogger(__name__)
# Headers every error answer under a path prefix carries (Ironic's version range under
# /baremetal), registered by the service at start-up (add_error_headers): api/ knows no service.
_ERROR_HEADERS: dict[str, dict[str, str]] = {}
# A path prefix's own error answer (add_error_page), in place of any service's body.
_ERROR_PAGES: dict[str, Callable[[int, str], Response]] = {}

_KIND_BY_STATUS = {  # Nova's fault names (nova/api/openstack/wsgi.py Fault)
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}
# Neutron's error types for answers that carry no type of their own (webob's HTTP exceptions).
_NEUTRON_BY_STATUS = {
    400: "HTTPBadRequest",
    401: "HTTPUnauthorized",
    403: "HTTPForbidden",
    404: "HTTPNotFound",
    405: "HTTPMethodNotAllowed",
    406: "HTTPNotAcceptable",
    408: "HTTPRequestTimeout",
    409: "HTTPConflict",
    413: "HTTPRequestEntityTooLarge",
    415: "HTTPUnsupportedMediaType",
    431: "HTTPRequestHeaderFieldsTooLarge",
    500: "HTTPInternalServerError",
    503: "HTTPServiceUnavailable",
}
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
}


_GLANCE_OFFERS = ("text/html", "application/json")


def _accept_quality(accept: str, offer: str) -> float:
    """The quality `accept` gives `offer`: that of its most specific matching media range."""
    best: tuple[int, float] = (-1, 0.0)
    kind, _, sub = offer.partition("/")
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        mkind, _, msub = media.lower().partition("/")
        if not mkind:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if (mkind, msub) == (kind, sub):
            specificity = 2
        elif mkind == kind and msub == "*":
            specificity = 1
        elif (mkind, msub) == ("*", "*"):
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, quality)
    return best[1]


def glance_error(status: int, message: str, accept: str) -> Response:
    """Glance's error answer, which webob writes: negotiated by the request's Accept between
    text/html (first, so for `*/*`: what python-glanceclient and openstacksdk read), JSON
    (`{"message", "code": "404 Not Found", "title"}`, for clients asking for it alone) and, when
    neither is acceptable or no Accept is given, text/plain. The message is Glance's explanation
    in webob's body template."""
    title = _TITLES.get(status, "Error")
    status_line = f"{status} {title}"
    ranked = sorted(_GLANCE_OFFERS, key=lambda offer: -_accept_quality(accept, offer))
    match = ranked[0] if _accept_quality(accept, ranked[0]) > 0 else None
    if match == "text/html":
        body = (
            f"<html>\n <head>\n  <title>{status_line}</title>\n </head>\n <body>\n"
            f"  <h1>{status_line}</h1>\n  {html.escape(message, quote=False)}<br /><br />\n\n\n\n"
            " </body>\n</html>"
        )
        return Response(body, status_code=status, media_type="text/html; charset=UTF-8")
    if match == "application/json":
        payload = {"message": f"{message}<br /><br />\n\n\n", "code": status_line, "title": title}
        return JSONResponse(payload, status_code=status)
    plain = f"{status_line}\n\n{message.replace(chr(10), ' ')}\n\n   "
    return Response(plain, status_code=status, media_type="text/plain; charset=UTF-8")


def accept_of(headers: Mapping[bytes, bytes]) -> str:
    """The Accept header of an ASGI scope's headers (as a dict), "" when absent."""
    return headers.get(b"accept", b"").decode("latin-1")


def error_response(
    path: str,
    status: int,
    message: str,
    kind: str | None = None,
    code: str | None = None,
    extra: dict[str, str] | None = None,
    accept: str = "*/*",
) -> Response:
    """`code` and `extra` (more fields of the error) are Placement's; `accept` (the request's
    Accept header) is read by the image service only, whose errors are negotiated."""
    for prefix, render in _ERROR_PAGES.items():
        if path.startswith(prefix):
            return render(status, message)
    title = _TITLES.get(status, "Error")
    headers = {}
    body: dict[str, object]
    if path.startswith("/placement"):
        error = {"status": status, "title": title, "detail": message, "request_id": request_id_var.get()}
        body = {"errors": [{**error, "code": code or "placement.undefined_code", **(extra or {})}]}
    elif path.startswith("/identity"):
        body = {"error": {"code": status, "message": message, "title": title}}
        if status == 401:
            headers["WWW-Authenticate"] = 'Keystone uri="/identity"'
    elif path.startswith("/image"):
        response = glance_error(status, message, accept)
        for prefix, extra_headers in _ERROR_HEADERS.items():
            if path.startswith(prefix):
                response.headers.update(extra_headers)
        return response
    elif path.startswith("/networking"):
        # Neutron: {"NeutronError": {"type", "message", "detail"}}. Networking's own errors carry
        # Neutron's type name as their kind (UpperCamelCase); any other error (Nova's lowerCamel
        # kinds, the framework's) is typed by its status, as webob's exceptions are.
        neutron_type = kind if kind and kind[:1].isupper() else _NEUTRON_BY_STATUS.get(status, "HTTPError")
        body = {"NeutronError": {"type": neutron_type, "message": message, "detail": ""}}
    elif path.startswith(("/baremetal", "/infra-optim")):
        # Ironic and Watcher: the fault is a JSON document inside a string; the version range on every answer.
        faultcode = "Client" if status < 500 else "Server"
        fault = {"faultstring": message, "faultcode": faultcode, "debuginfo": None}
        body = {"error_message": json.dumps(fault)}
    else:
        key = kind or _KIND_BY_STATUS.get(status, "computeFault")
        body = {key: {"code": status, "message": message}}
    for prefix, extra_headers in _ERROR_HEADERS.items():
        if path.startswith(prefix):
            headers.update(extra_headers)
    return JSONResponse(body, status_code=status, headers=headers)


def add_error_page(prefix: str, render: Callable[[int, str], Response]) -> None:
    """Every error answer for a path under `prefix` is `render(status, message)` from now on (the
    dashboard's HTML page instead of a service's JSON body)."""
    _ERROR_PAGES[prefix] = render


def add_error_headers(prefix: str, headers: dict[str, str]) -> None:
    """Every error answer for a path under `prefix` carries `headers` from now on (registering a
    prefix again replaces its headers)."""
    _ERROR_HEADERS[prefix] = dict(headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(KumoError)
    async def _kumo(request: Request, exc: KumoError) -> Response:
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        code, extra = getattr(exc, "code", None), getattr(exc, "extra", None)
        accept = request.headers.get("accept", "")
        return error_response(request.url.path, exc.status, exc.message, exc.kind, code, extra, accept)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        message = "Invalid input for field/attribute: " + "; ".join(parts)
        return error_response(request.url.path, 400, message, accept=request.headers.get("accept", ""))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "The resource could not be found."
        return error_response(
            request.url.path, exc.status_code, message, accept=request.headers.get("accept", "")
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(
            request.url.path,
            500,
            "An unexpected error prevented the server from fulfilling your request.",
            accept=request.headers.get("accept", ""),
        )
