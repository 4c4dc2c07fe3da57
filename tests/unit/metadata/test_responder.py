"""The responder's HTTP over a real loopback socket, with the backend faked: pipelined requests
answered in order across a miss, keep-alive and close, unknown sources, a backend that fails;
and the request head parser."""

from __future__ import annotations

import asyncio

import pytest

from kumo.metadata.bundle import Bundle
from kumo.metadata.cache import BundleCache
from kumo.metadata.responder import BAD_REQUEST, NOT_ALLOWED, Request, Responder, parse_head
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
