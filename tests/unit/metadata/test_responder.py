"""The responder's HTTP over a real loopback socket, with the backend faked: pipelined requests
answered in order across a miss, keep-alive and close, unknown sources, a backend that fails;
and the request head parser; what keeps one guest from holding the agent's memory and
descriptors (idle timeout, the cap on pipelined requests, flow control, a network's stop
dropping its connections)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from kumo.metadata.bundle import Bundle
from kumo.metadata.cache import BundleCache, Fetch
from kumo.metadata.responder import BAD_REQUEST, NOT_ALLOWED, Request, Responder, _Connection, parse_head
from kumo.metadata.sources import SourceMap
from tests.unit.metadata.builders import USER_DATA, UUID, bundle


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"GET /openstack HTTP/1.1\r\nHost: x", Request("GET", "/openstack", True, 0.0)),
        (b"GET / HTTP/1.0", Request("GET", "/", False, 0.0)),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive", Request("GET", "/", True, 0.0)),
        (b"HEAD / HTTP/1.1\r\nConnection: close", Request("HEAD", "/", False, 0.0)),
        (b"POST / HTTP/1.1\r\nContent-Length: 0", NOT_ALLOWED),
        (b"GET / HTTP/1.1\r\nContent-Length: 5", BAD_REQUEST),
        (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked", BAD_REQUEST),
        (b"GET / HTTP/2.0", BAD_REQUEST),
        (b"GET nope HTTP/1.1", BAD_REQUEST),
        (b"GET /\r\n", BAD_REQUEST),
        (b"GET / HTTP/1.1\r\nno colon", BAD_REQUEST),
    ],
)
def test_parse_head(head: bytes, expected: object) -> None:
    assert parse_head(head, 0.0) == expected


async def _exchange(port: int, raw: bytes, source: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(raw)
    data = await asyncio.wait_for(reader.read(), 5)  # until the responder closes
    writer.close()
    return data


def test_pipelined_requests_are_answered_in_order_and_close_ends_the_connection() -> None:
    reads: list[str] = []

    async def fetch(uuid: str) -> Bundle | None:
        reads.append(uuid)
        await asyncio.sleep(0.05)  # the first request misses and waits; the rest queue behind it
        return bundle()

    async def scenario() -> bytes:
        sources = SourceMap()
        sources.set("n", "127.0.0.1", UUID)
        responder = Responder(BundleCache(fetch), sources)
        server = await responder.listen("n", "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        raw = (
            b"GET /latest/meta-data/hostname HTTP/1.1\r\n\r\n"
            b"GET /openstack/latest/user_data HTTP/1.1\r\n\r\n"
            b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n"
            b"GET /never-answered HTTP/1.1\r\n\r\n"
        )
        try:
            return await _exchange(port, raw)
        finally:
            await responder.stop()

    data = asyncio.run(scenario())
    answers = data.split(b"HTTP/1.1 ")[1:]
    assert [a.split(b" ", 1)[0] for a in answers] == [b"200", b"200", b"404"]
    assert answers[0].endswith(b"\r\n\r\nweb-1.novalocal")
    assert answers[1].endswith(b"\r\n\r\n" + USER_DATA)
    assert b"Connection: close" in answers[2] and reads == [UUID]


def test_unknown_sources_and_failed_backends() -> None:
    async def fetch(uuid: str) -> Bundle | None:
        raise ConnectionError("API down")

    async def scenario() -> tuple[bytes, bytes]:
        sources = SourceMap()
        sources.set("n", "127.0.0.1", UUID)
        responder = Responder(BundleCache(fetch), sources)
        server = await responder.listen("n", "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        request = b"GET /openstack HTTP/1.0\r\n\r\n"
        try:
            return await _exchange(port, request), await _exchange(port, request, source="127.0.0.9")
        finally:
            await responder.stop()

    known, stranger = asyncio.run(scenario())
    assert known.startswith(b"HTTP/1.1 503 ") and stranger.startswith(b"HTTP/1.1 404 ")


async def _serve(fetch: Fetch, **options: Any) -> tuple[Responder, int]:
    sources = SourceMap()
    sources.set("n", "127.0.0.1", UUID)
    sources.set("m", "127.0.0.1", UUID)
    responder = Responder(BundleCache(fetch), sources, **options)
    server = await responder.listen("n", "127.0.0.1", 0)
    return responder, server.sockets[0].getsockname()[1]


async def _fresh(uuid: str) -> Bundle | None:
    return bundle()


def test_an_idle_keep_alive_connection_is_dropped() -> None:
    async def scenario() -> tuple[bytes, float, int]:
        responder, port = await _serve(_fresh, idle_timeout=0.3)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.monotonic()
            writer.write(b"GET /openstack HTTP/1.1\r\n\r\n")
            await asyncio.sleep(0.2)
            writer.write(b"GET /openstack HTTP/1.1\r\n\r\n")  # re-arms the timer
            data = await asyncio.wait_for(reader.read(), 5)  # until the responder drops it
            took = time.monotonic() - started
            writer.close()
            return data, took, responder.connections("n")
        finally:
            await responder.stop()

    data, took, left = asyncio.run(scenario())
    assert data.count(b"HTTP/1.1 200 ") == 2 and b"Connection: close" not in data
    assert 0.45 < took < 3 and left == 0  # 0.3 s after the second request, sent 0.2 s in


def test_stopping_a_network_drops_its_keep_alive_connections_at_once() -> None:
    async def scenario() -> tuple[bytes, bool, float]:
        responder, port = await _serve(_fresh)  # the 30 s default idle timeout
        other = await responder.listen("m", "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            other_reader, other_writer = await asyncio.open_connection(
                "127.0.0.1", other.sockets[0].getsockname()[1]
            )
            for w in (writer, other_writer):
                w.write(b"GET /openstack HTTP/1.1\r\n\r\n")
            await reader.readuntil(b"latest")
            await other_reader.readuntil(b"latest")
            started = time.monotonic()
            await asyncio.wait_for(responder.stop_network("n"), 2)
            rest = await asyncio.wait_for(reader.read(), 2)
            took = time.monotonic() - started
            other_writer.write(b"GET /openstack HTTP/1.1\r\nConnection: close\r\n\r\n")
            other_data = await asyncio.wait_for(other_reader.read(), 2)  # its network still serves
            writer.close()
            other_writer.close()
            return rest, other_data.startswith(b"HTTP/1.1 200 "), took
        finally:
            await asyncio.wait_for(responder.stop(), 2)

    rest, other_served, took = asyncio.run(scenario())
    assert rest == b"" and other_served and took < 1


def test_pipelined_requests_beyond_the_cap_wait_unparsed_and_are_all_answered_in_order() -> None:
    release = asyncio.Event()

    async def slow(uuid: str) -> Bundle | None:
        await release.wait()
        return bundle()

    async def scenario() -> tuple[list[object], bytes]:
        responder, port = await _serve(slow, max_pending=2)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            paths = [f"/openstack/latest/{name}" for name in ("meta_data.json", "user_data")] * 5
            writer.write(b"".join(f"GET {p} HTTP/1.1\r\n\r\n".encode() for p in paths))
            writer.write(b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")
            await asyncio.sleep(0.2)  # every request arrived; the first waits for the backend
            (connection,) = responder._connections["n"]
            queued = [len(connection._pending), connection._reading_paused]
            release.set()
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return queued, data
        finally:
            await responder.stop()

    queued, data = asyncio.run(scenario())
    answers = data.split(b"HTTP/1.1 ")[1:]
    assert queued == [1, True]  # one in flight, one queued (the cap of two); the rest unparsed
    assert [a.split(b" ", 1)[0] for a in answers] == [b"200"] * 10 + [b"404"]
    assert all(a.endswith(USER_DATA) for a in answers[1:10:2])


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def test_a_peer_that_stops_reading_stops_the_parsing_until_it_reads_again() -> None:
    async def scenario() -> list[tuple[int, bool]]:
        responder, _port = await _serve(_fresh)
        await responder.cache.get(UUID)  # fresh: answered inside data_received
        transport = _Transport()
        connection = _Connection(responder, "n")
        connection.connection_made(transport)
        seen = [(len(transport.written), transport.reading)]
        connection.data_received(b"GET /openstack HTTP/1.1\r\n\r\n")
        seen.append((len(transport.written), transport.reading))
        connection.pause_writing()
        connection.data_received(b"GET /openstack HTTP/1.1\r\n\r\n" * 3)
        seen.append((len(transport.written), transport.reading))
        connection.resume_writing()
        seen.append((len(transport.written), transport.reading))
        connection.connection_lost(None)
        await responder.stop()
        return seen

    assert asyncio.run(scenario()) == [(0, True), (1, True), (1, False), (4, True)]
