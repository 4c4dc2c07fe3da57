"""The head bound of the HTTP protocol, fed bytes directly (no socket, no app call)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from kumo.api.transport import HeadBoundedHttpToolsProtocol

LIMIT = 1024


class FakeTransport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("a refused head never reaches the app")


@pytest.fixture
def protocol() -> Iterator[tuple[HeadBoundedHttpToolsProtocol, FakeTransport]]:
    loop = asyncio.new_event_loop()
    config = Config(app=_app, h11_max_incomplete_event_size=LIMIT)
    proto = HeadBoundedHttpToolsProtocol(config, ServerState(), {}, _loop=loop)
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    yield proto, transport
    loop.close()


def _answer(transport: FakeTransport) -> tuple[int, dict[str, Any]]:
    head, _, body = transport.written.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_a_head_arriving_whole_is_measured_when_complete(protocol: Any) -> None:
    proto, transport = protocol
    proto.data_received(b"GET /identity/v3 HTTP/1.1\r\nHost: k\r\nX-Big: " + b"a" * LIMIT + b"\r\n\r\n")
    status, body = _answer(transport)
    assert status == 431 and body["error"]["code"] == 431
    assert transport.closed


def test_a_head_arriving_in_pieces_is_cut_off_past_the_bound(protocol: Any) -> None:
    proto, transport = protocol
    proto.data_received(b"GET /placement/resource_providers HTTP/1.1\r\nHost: k\r\nX-Endless: ")
    fed = 0
    while not transport.closed:
        proto.data_received(b"a" * 100)
        fed += 100
    assert fed <= LIMIT
    status, body = _answer(transport)
    assert status == 431 and body["errors"][0]["status"] == 431


def test_a_malformed_request_is_a_400_in_the_service_format(protocol: Any) -> None:
    proto, transport = protocol
    proto.data_received(b"GET /baremetal/v1/nodes HTTP/1.1\r\nHost: k\r\nX-Auth-Token: a\x00b\r\n\r\n")
    status, body = _answer(transport)
    assert status == 400 and json.loads(body["error_message"])["faultcode"] == "Client"


def test_a_head_within_the_bound_is_served(protocol: Any) -> None:
    proto, transport = protocol
    proto._start_asgi_task = lambda cycle, app: None  # the app is not what is tested here
    proto.data_received(
        b"GET /compute/v2.1 HTTP/1.1\r\nHost: k\r\nX-Fits: " + b"a" * (LIMIT // 2) + b"\r\n\r\n"
    )
    assert transport.written == b"" and not transport.closed
    assert proto.scope["path"] == "/compute/v2.1"
