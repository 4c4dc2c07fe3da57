"""Serving the ASGI app with uvicorn, in the foreground or in a thread (tests, `kumo up`)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from kumo.api.transport import HeadBoundedHttpToolsProtocol
from kumo.app import create_app
from kumo.runtime import Runtime


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ThreadedServer:
    """uvicorn in a background thread; `url` is ready once start() returns."""

    def __init__(self, rt: Runtime, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.rt = rt
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(
            create_app(rt),
            host=host,
            port=self.port,
            http=HeadBoundedHttpToolsProtocol,
            h11_max_incomplete_event_size=rt.settings.max_request_header_bytes,
            log_level="warning",
            access_log=False,
            backlog=4096,
            timeout_keep_alive=30,
            # Agents' long polls may be in flight at shutdown: cancel them after 2 s (their
            # tasks stay pending in the database) rather than wait up to a poll's 20 s.
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="kumo-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("kumo API did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.rt.waker.stop()  # agents' long polls answer now: nothing holds the shutdown
        self.server.should_exit = True
        self.thread.join(timeout=10)
