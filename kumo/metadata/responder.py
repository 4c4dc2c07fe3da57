"""The metadata responder an agent runs: HTTP/1.1 on asyncio, one listening socket per network
(bound by the data plane inside the network's namespace on 169.254.169.254:80, or anywhere for
tests), each request's instance found by (network, source address), answered from the edge
cache.

Cheap per request: a fresh cache entry answers inside `data_received` (no task, no framework);
only a miss awaits, in one task per connection that keeps the connection's answers in order.
Only GET and HEAD are served (guests only read); a request with a body, an oversized head or a
malformed line is refused and its connection closed.

One guest cannot hold the agent's memory or descriptors: a connection idle for `idle_timeout`
is dropped; one that has `max_pending` requests waiting for a backend read, or whose peer does
not read its answers (the transport's `pause_writing`), is parsed no further and read no more
until they drain; and stopping a network drops its connections with its listener, so a stop
never waits on a keep-alive connection."""

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
IDLE_TIMEOUT = 30.0  # seconds a connection may stay without a request (re-armed by each one)
MAX_PENDING = 32  # requests a connection may have waiting for a backend read before reading pauses
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

    def __init__(
        self,
        cache: BundleCache,
        sources: SourceMap,
        idle_timeout: float = IDLE_TIMEOUT,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.cache = cache
        self.sources = sources
        self.idle_timeout = idle_timeout
        self.max_pending = max(1, max_pending)
        self._servers: dict[str, list[asyncio.Server]] = {}
        self._connections: dict[str, set[_Connection]] = {}

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
        """Stop listening on the network and drop its connections (keep-alive ones too: what a
        server's `wait_closed` waits for on Python 3.12.1 and later)."""
        servers = self._servers.pop(network_id, [])
        for server in servers:
            server.close()
        for connection in list(self._connections.get(network_id, ())):
            connection.abort()
        for server in servers:
            await server.wait_closed()

    def connections(self, network_id: str) -> int:
        """How many connections of the network are open."""
        return len(self._connections.get(network_id, ()))

    def _opened(self, network_id: str, connection: _Connection) -> None:
        self._connections.setdefault(network_id, set()).add(connection)

    def _lost(self, network_id: str, connection: _Connection) -> None:
        open_ = self._connections.get(network_id)
        if open_ is not None:
            open_.discard(connection)
            if not open_:
                del self._connections[network_id]

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
        self._reading_paused = False
        self._writable: asyncio.Future[None] | None = None  # set while the transport's buffer is full
        self._loop = asyncio.get_running_loop()
        self._active = self._loop.time()
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        source = str(peer[0]) if peer else ""
        self._uuid = self._responder.instance_of(self._network_id, source)
        self._responder._opened(self._network_id, self)
        self._idle = self._loop.call_later(self._responder.idle_timeout, self._on_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._responder._lost(self._network_id, self)
        if self._idle is not None:
            self._idle.cancel()
        if self._task is not None:
            self._task.cancel()
        if self._writable is not None and not self._writable.done():
            self._writable.cancel()

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)
        self._resume_reading()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._buffer += data
        self._active = self._loop.time()
        self._parse()

    def _parse(self) -> None:
        """Answer or queue the complete requests in the buffer, until the peer stops reading or
        too many wait for a backend read (then the transport stops reading too)."""
        while not self._closing:
            if self._writable is not None or len(self._pending) >= self._responder.max_pending:
                if not self._reading_paused and self._transport is not None:
                    self._reading_paused = True
                    self._transport.pause_reading()
                return
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
                self._task = self._loop.create_task(self._drain())

    def _resume_reading(self) -> None:
        if self._closing or self._writable is not None or len(self._pending) >= self._responder.max_pending:
            return
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()
        self._parse()  # requests the buffer already holds

    async def _drain(self) -> None:
        try:
            while self._pending and not self._closing:
                request = self._pending.popleft()
                answer = await self._responder.answer(self._uuid, request.path)
                if self._writable is not None:
                    await self._writable  # the peer reads its answers before it gets more
                if self._closing:
                    break
                self._write(request, answer)
                self._resume_reading()
        finally:
            self._task = None

    def _on_idle(self) -> None:
        """Drop a connection that sent nothing for `idle_timeout` (one still being answered
        waits, unless its peer stopped reading)."""
        timeout = self._responder.idle_timeout
        idle = self._loop.time() - self._active
        if not self._closing and (idle < timeout or (self._task is not None and self._writable is None)):
            self._idle = self._loop.call_later(max(timeout - idle, 0.0) or timeout, self._on_idle)
            return
        self.abort()

    def abort(self) -> None:
        """Drop the connection now, whatever it still had to send."""
        self._closing = True
        self._pending.clear()
        if self._transport is not None:
            self._transport.abort()

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
