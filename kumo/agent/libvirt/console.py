"""Reading an instance's serial console log: its tail, never the whole file."""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import socketserver
import threading
import tty
from pathlib import Path

from kumo.agent.console_tail import tail_lines

# As much as Nova's libvirt driver returns: enough for a boot, bounded for the API.
MAX_CONSOLE_BYTES = 100 * 1024
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")


def tail(path: Path, lines: int | None = None, max_bytes: int = MAX_CONSOLE_BYTES) -> str:
    """The last `lines` lines (all when None or negative; Nova's rule, console_tail.tail_lines)
    of the last `max_bytes` of the log, as text without control characters other than tab and
    newline. Empty when there is no log."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - max_bytes))
            data = handle.read(max_bytes)
    except FileNotFoundError:
        return ""
    text = _CONTROL.sub("", data.decode("utf-8", errors="replace").replace("\r\n", "\n"))
    return tail_lines(text, lines)


class PtyBridge(socketserver.ThreadingTCPServer):
    """A guest's serial console (its pty chardev, `pty_path`) served as a raw TCP stream on
    (`host`, a free port), for kumo's websocket proxy: each connection relays both ways
    between the socket and the pty until either closes. Closed with the guest."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, pty_path: str) -> None:
        self.pty_path = pty_path
        super().__init__((host, 0), _PtyRelay)
        threading.Thread(target=self.serve_forever, name="kumo-serial-bridge", daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _PtyRelay(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, PtyBridge)
        conn: socket.socket = self.request
        fd = os.open(server.pty_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            tty.setraw(fd)
            _relay(conn, fd)
        finally:
            os.close(fd)


def _relay(conn: socket.socket, fd: int) -> None:
    while True:
        readable, _, _ = select.select([conn.fileno(), fd], [], [], 1.0)
        for source in readable:
            with contextlib.suppress(BlockingIOError):
                if source == conn.fileno():
                    data = conn.recv(4096)
                    if not data:
                        return
                    os.write(fd, data)
                else:
                    data = os.read(fd, 4096)
                    if not data:
                        return
                    conn.sendall(data)
