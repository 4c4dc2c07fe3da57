"""uvicorn's httptools protocol with a bound on the size of a request's head.

httptools (llhttp) and uvicorn keep a request line and headers in memory, however long, until
the head is complete: without a bound, one client could grow a worker by the gigabyte. uvicorn's
own bound, `h11_max_incomplete_event_size`, applies only to its h11 protocol; this protocol
applies the same setting (kumo: `max_request_header_bytes`) to httptools.

Invariants: the bytes a connection sends while a head is incomplete are counted as they arrive,
and past the bound the connection is answered 431 and closed (at most one read, 256 KiB, beyond
the bound is ever parsed); a head that arrives whole is measured when it completes. Errors this
layer answers (431, and uvicorn's 400 for a request llhttp cannot parse, such as one with a
control character in a header) carry the service's OpenStack error body when the path is known
so far.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from kumo.api.errors import error_response

DEFAULT_MAX_HEAD_BYTES = 64 * 1024
_STATUS_LINES = {
    400: b"HTTP/1.1 400 Bad Request\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
}


class _HeadTooLarge(Exception):
    pass


class HeadBoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_head_bytes = config.h11_max_incomplete_event_size or DEFAULT_MAX_HEAD_BYTES
        self._in_head = True  # between two requests, or inside a head: what comes is a head
        self._head_bytes = 0  # bytes received since the current head began to be incomplete
        self._head_too_large = False
        self.url = b""

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
            self._head_too_large = True
            self.send_400_response("")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        head = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        self._in_head = False
        self._head_bytes = 0
        if head > self.max_head_bytes:
            self._head_too_large = True
            raise _HeadTooLarge  # llhttp stops; uvicorn answers through send_400_response
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse; ours to a head too large, too."""
        if self._head_too_large:
            status = 431
            message = f"The request line and headers are larger than {self.max_head_bytes} bytes."
        else:
            status, message = 400, msg
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        response = error_response(path, status, message)
        head = [_STATUS_LINES[status]]
        head += [name + b": " + value + b"\r\n" for name, value in response.raw_headers]
        self.transport.write(b"".join([*head, b"connection: close\r\n\r\n", response.body]))
        self.transport.close()
