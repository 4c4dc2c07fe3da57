"""Drain hook calls: the signature covers the timestamp header and the body (a replay with
another timestamp does not verify); the timeout is a deadline on the whole call, so a hook that
trickles its answer a byte at a time (each read well within the timeout) still vetoes on time."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kumo.rebalance import hooks


class Trickle(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []
    stop = threading.Event()

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        Trickle.seen.append({"raw": raw, **{k.lower(): v for k, v in self.headers.items()}})
        slow = json.loads(raw)["event"] == hooks.PRE
        data = b'{"proceed": true}' + b" " * 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for i in range(len(data)):
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
            if slow and Trickle.stop.wait(0.05):
                return

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Trickle.seen, Trickle.stop = [], threading.Event()
    yield f"http://127.0.0.1:{server.server_address[1]}/drain"
    Trickle.stop.set()
    server.shutdown()
    server.server_close()


def test_a_trickling_hook_vetoes_at_the_deadline_and_calls_are_signed_with_their_time(url: str) -> None:
    drain = hooks.DrainHooks(url, "s3cret", 0.5, wall_clock=lambda: 1_800_000_000.0)
    started = time.monotonic()
    verdict = drain.call(hooks.PRE, {"action": "a1"})  # 217 bytes at 0.05 s each: ~10 s in all
    took = time.monotonic() - started
    assert verdict == hooks.Verdict(False, "drain hook timed out after 0.5 s")
    assert took < 1.5

    assert drain.call(hooks.POST, {"action": "a1", "outcome": "SUCCEEDED"}) == hooks.Verdict(True)
    call = Trickle.seen[-1]
    assert call["x-kumo-timestamp"] == "1800000000" and call["x-kumo-event"] == hooks.POST
    expected = hmac.new(b"s3cret", b"1800000000." + call["raw"], hashlib.sha256).hexdigest()
    assert call["x-kumo-signature"] == "sha256=" + expected == hooks.sign("s3cret", "1800000000", call["raw"])
    assert hooks.sign("s3cret", "1800000300", call["raw"]) != call["x-kumo-signature"]  # no replay later
