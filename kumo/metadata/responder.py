"""The metadata responder an agent runs: HTTP/1.1 on asyncio, one listening socket per network
(bound by the data plane inside the network's namespace on 169.254.169.254:80, or anywhere for
tests), each request's instance found by (network, source address), answered from the edge
cache.

Cheap per request: a fresh cache entry answers inside `data_received` (no task, no framework);
only a miss awaits, in one task per connection that keeps the connection's answers in order.
Only GET and HEAD are served (guests only read); a request with a body, an oversized head or a
malformed line is refused and its connection closed."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from dataclasses import dataclass

from kumo import metrics
from kumo.metadata.cache import BundleCache, Entry
from kumo.metadata.render import NOT_FOUND, TEXT, Answer
from kumo.metadata.sources import SourceMap

log = logging.getLogger("kumo.metadata")
MAX_HEAD_BYTES = 8192
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}
UNAVAILABLE = Answer(503, b"503 Service Unavailable\n\nThe metadata backend did not answer.\n")
NOT_ALLOWED = Answer(405, b"405 Method Not Allowed\n")
BAD_REQUEST = Answer(400, b"400 Bad Request\n")
TOO_LARGE = Answer(431, b"431 Request Header Fields Too Large\n")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    keep_alive: bool
    started: float


def encode(answer: Answer, keep_alive: bool, head_only: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {answer.status} {REASONS.get(answer.status, 'Error')}\r\n"
        f"Content-Type: {answer.content_type}\r\nContent-Length: {len(answer.body)}\r\n"
        f"{'' if keep_alive else 'Connection: close' + chr(13) + chr(10)}\r\n"
    ).encode()
    return head if head_only else head + answer.body


def parse_head(head: bytes, started: float) -> Request | Answer:
    """A request from its head (without the blank line), or the answer that refuses it."""
    try:
        text = head.decode("latin-1")
        request_line, *header_lines = text.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        return BAD_REQUEST
    if not version.startswith("HTTP/1.") or not target.startswith("/"):
        return BAD_REQUEST
    if method not in ("GET", "HEAD"):
        return NOT_ALLOWED  # (its connection closes: a body it may carry is never read)
    keep_alive = version == "HTTP/1.1"
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep:
            return BAD_REQUEST
        name = name.strip().lower()
        if name == "connection":
            token = value.strip().lower()
            keep_alive = token != "close" and (keep_alive or token == "keep-alive")
        elif name == "transfer-encoding" or (name == "content-length" and value.strip() != "0"):
            return BAD_REQUEST  # guests only read: no bodies
    return Request(method, target, keep_alive, started)


class Responder:
    """Answers metadata requests of the networks it listens on."""

    def __init__(self, cache: BundleCache, sources: SourceMap) -> None:
        self.cache = cache
        self.sources = sources
        self._servers: dict[str, list[asyncio.Server]] = {}

    async def listen(
        self, network_id: str, host: str = "169.254.169.254", port: int = 80, backlog: int = 1024
    ) -> asyncio.Server:
        """Serve the network on (host, port) in this process's own namespace."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Connection(self, network_id), host, port, reuse_address=True, backlog=backlog
        )
        self._servers.setdefault(network_id, []).append(server)
        return server

    async def listen_socket(
        self, network_id: str, sock: socket.socket, backlog: int = 1024
    ) -> asyncio.Server:
        """Serve the network on an already bound socket (one the data plane bound inside the
        network's namespace: the socket keeps its namespace)."""
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        server = await loop.create_server(lambda: _Connection(self, network_id), sock=sock, backlog=backlog)
        self._servers.setdefault(network_id, []).append(server)
        return server

    async def stop_network(self, network_id: str) -> None:
        for server in self._servers.pop(network_id, []):
            server.close()
            await server.wait_closed()

    async def stop(self) -> None:
        for network_id in list(self._servers):
            await self.stop_network(network_id)

    def instance_of(self, network_id: str, source: str) -> str | None:
        return self.sources.lookup(network_id, source)

    def answer_now(self, uuid: str | None, path: str) -> Answer | None:
        """The answer if it needs no backend read; None when it does (await `answer`)."""
        if uuid is None:
            return NOT_FOUND
        entry = self.cache.fresh(uuid)
        return None if entry is None else _answer_of(entry, path)

    async def answer(self, uuid: str | None, path: str) -> Answer:
        if uuid is None:
            return NOT_FOUND
        try:
            entry = await self.cache.get(uuid)
        except Exception:
            log.exception("metadata of instance %s could not be read", uuid)
            return UNAVAILABLE
        return _answer_of(entry, path)


def _answer_of(entry: Entry, path: str) -> Answer:
    return entry.answer(path) or NOT_FOUND


class _Connection(asyncio.Protocol):
    def __init__(self, responder: Responder, network_id: str) -> None:
        self._responder = responder
        self._network_id = network_id
        self._buffer = bytearray()
        self._pending: deque[Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._uuid: str | None = None
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        source = str(peer[0]) if peer else ""
        self._uuid = self._responder.instance_of(self._network_id, source)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._buffer += data
        while not self._closing:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    self._refuse(TOO_LARGE)
                return
            if end > MAX_HEAD_BYTES:
                self._refuse(TOO_LARGE)
                return
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            parsed = parse_head(head, time.perf_counter())
            if isinstance(parsed, Answer):
                self._refuse(parsed)
                return
            if self._task is None:
                answer = self._responder.answer_now(self._uuid, parsed.path)
                if answer is not None:
                    self._write(parsed, answer)
                    continue
            self._pending.append(parsed)
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._pending and not self._closing:
                request = self._pending.popleft()
                self._write(request, await self._responder.answer(self._uuid, request.path))
        finally:
            self._task = None

    def _write(self, request: Request, answer: Answer) -> None:
        assert self._transport is not None
        if answer.status >= 400:
            metrics.METADATA_ERRORS.labels(str(answer.status)).inc()
        self._transport.write(encode(answer, request.keep_alive, request.method == "HEAD"))
        metrics.METADATA_REQUEST_SECONDS.observe(time.perf_counter() - request.started)
        if not request.keep_alive:
            self._close()

    def _refuse(self, answer: Answer) -> None:
        assert self._transport is not None
        metrics.METADATA_ERRORS.labels(str(answer.status)).inc()
        self._transport.write(encode(Answer(answer.status, answer.body, TEXT), keep_alive=False))
        self._close()

    def _close(self) -> None:
        self._closing = True
        self._pending.clear()
        assert self._transport is not None
        self._transport.close()
