"""Checks on every request before any route sees it (pure ASGI): control characters in the path
and query string, the body's size, and characters inside it that no database column can hold.

Invariants: a route (and the Placement claim fast lane) never receives more body bytes than its
limit, nor a body holding a NUL character (raw or as the JSON escape) or a JSON
string with an unpaired UTF-16 surrogate escape (not UTF-8, so no database takes it); a refused
request gets a 4xx in its service's OpenStack error format (kumo.api.errors.error_response), a
413 or 408 also closes the connection instead of reading the rest. The larger limit of `/internal` is
for requests that carry the agent token (checked here in constant time, before a byte of the
body is read); any other request has the default limit. A body still arriving when its read's
deadline passes is a 408 (uvicorn times out no body), so a slow client holds no buffer for long.
Image data uploads stream to the store and are exempt from the body checks.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kumo.api.errors import accept_of, error_response

_CONTROL_TEXT = re.compile("[\x00-\x1f\x7f]")
_CONTROL_BYTES = re.compile(b"[\x00-\x1f\x7f]")
_NUL_ESCAPE = b"\\u0000"
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# Image data uploads, streamed: Glance's (kumo serves no /stage), the agents' snapshots to /internal
# (its route checks their token before it reads a byte) and the dashboard's, on to Glance's.
_STREAMED_UPLOAD = re.compile(r"/(image/v2|internal/v1|dashboard)/images/[^/]+/file")


def request_line_refusal(path: str, query_string: bytes) -> str | None:
    """Why the path or query string is refused (a C0 control character or DEL, once
    percent-decoded), or None."""
    if _CONTROL_TEXT.search(path):
        return "Control characters are not allowed in the request path."
    if b"%" in query_string and _CONTROL_BYTES.search(unquote_to_bytes(query_string)):
        return "Control characters are not allowed in the query string."
    return None


def holds_nul(body: bytes) -> bool:
    """Whether `body` holds a NUL character: a raw one, or a JSON `\\u0000` escape. The escape
    counts only when the backslash that starts it is not itself escaped, i.e. when an even
    number of backslashes precedes it (`\\\\u0000` is a backslash followed by `u0000`)."""
    if b"\x00" in body:
        return True
    start = body.find(_NUL_ESCAPE)
    while start != -1:
        before = start
        while before > 0 and body[before - 1] == 0x5C:  # a backslash
            before -= 1
        if (start - before) % 2 == 0:
            return True
        start = body.find(_NUL_ESCAPE, start + 1)
    return False


def holds_lone_surrogate(body: bytes) -> bool:
    """Whether `body` is JSON with a string that holds an unpaired surrogate (`"\\ud800"`).
    Parsed only when a surrogate escape is there at all (emoji escaped by the client's JSON
    encoder are pairs: `"\\ud83d\\ude00"`); a body that is not JSON is the route's to refuse."""
    if _SURROGATE_ESCAPE.search(body) is None:
        return False
    try:
        pending: list[Any] = [json.loads(body)]
    except (ValueError, RecursionError):
        return False
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending += [*value.keys(), *value.values()]
        elif isinstance(value, list):
            pending += value
        elif isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def body_refusal(body: bytes) -> str | None:
    """Why a (non-streamed) body is refused before any route reads it, or None."""
    if holds_nul(body):
        return "NUL characters are not allowed in the request body."
    if holds_lone_surrogate(body):
        return "Invalid Unicode in the request body: an unpaired surrogate escape."
    return None


def streams_body(scope: Scope) -> bool:
    """Whether the route reads its body as a stream of any length (image data upload)."""
    return scope["method"] == "PUT" and _STREAMED_UPLOAD.fullmatch(scope["path"]) is not None


def _has_body(headers: dict[bytes, bytes]) -> bool:
    return b"transfer-encoding" in headers or headers.get(b"content-length", b"0") != b"0"


def _declared_length(headers: dict[bytes, bytes]) -> int | None:
    raw = headers.get(b"content-length")
    return int(raw) if raw is not None and raw.isdigit() else None


def carries_agent_token(scope: Scope, agent_token: str, header: bytes) -> bool:
    """Whether the request's (first) `header` (a lowercased name) is `agent_token` (constant
    time, as kumo.agent.routes.agent compares it); never when no agent token is configured."""
    presented = next((value for name, value in scope["headers"] if name == header), b"")
    return bool(agent_token) and hmac.compare_digest(presented, agent_token.encode())


class EdgeGuard:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_internal_body_bytes: int,
        agent_token: str,
        agent_token_header: str,
        body_timeout_seconds: float,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_internal_body_bytes = max_internal_body_bytes
        self.agent_token = agent_token
        self.agent_token_header = agent_token_header.lower().encode("latin-1")
        self.body_timeout_seconds = body_timeout_seconds

    def body_limit(self, scope: Scope) -> int:
        """`/internal`'s limit for an agent (its token presented), the default for anyone else."""
        if scope["path"].startswith("/internal") and carries_agent_token(
            scope, self.agent_token, self.agent_token_header
        ):
            return self.max_internal_body_bytes
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = dict(scope["headers"])
        refusal = request_line_refusal(path, scope["query_string"])
        if refusal is not None:
            await error_response(path, 400, refusal, accept=accept_of(headers))(scope, receive, send)
            return
        if not _has_body(headers) or streams_body(scope):
            await self.app(scope, receive, send)
            return
        limit = self.body_limit(scope)
        declared = _declared_length(headers)
        body: bytes | Message | None = None
        if declared is None or declared <= limit:
            try:
                with anyio.fail_after(self.body_timeout_seconds):
                    body = await _read_body(receive, limit)
            except TimeoutError:
                await _refuse(scope, receive, send, 408, _TOO_SLOW.format(self.body_timeout_seconds))
                return
        if body is None:
            await _refuse(scope, receive, send, 413, _TOO_LARGE.format(limit))
        elif not isinstance(body, bytes):  # the client went away mid-body: the app hears it
            await self.app(scope, replay(body, receive), send)
        elif (refusal := body_refusal(body)) is not None:
            await error_response(path, 400, refusal, accept=accept_of(headers))(scope, receive, send)
        else:
            await self.app(scope, replay({"type": "http.request", "body": body}, receive), send)


async def _read_body(receive: Receive, limit: int) -> bytes | Message | None:
    """The whole body; None as soon as it exceeds `limit` bytes (the rest is left unread); the
    disconnect message when the client goes away first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


_TOO_LARGE = "The request body is larger than the limit of {} bytes."
_TOO_SLOW = "The request body did not arrive within {:g} seconds."


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    response = error_response(scope["path"], status, message, accept=accept_of(dict(scope["headers"])))
    response.headers["Connection"] = "close"  # the server does not read the rest
    await response(scope, receive, send)


def replay(first: Message, receive: Receive) -> Receive:
    """`first` (the whole body, or the disconnect), then whatever the connection says next."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return first
        return await receive()

    return replayed
