"""Shared by the rebalancer's functional and real-guest tests: Watcher's API prefix and
microversion header, and the operator's drain hook as a local HTTP server that checks each call's
signature (HMAC-SHA256 of "<timestamp>.<body>" with the shared secret, kumo/rebalance/hooks.py),
records every call and may veto the pre-migrate ones."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OPT = "/infra-optim/v1"
VERSION = {"OpenStack-API-Version": "infra-optim 1.5"}
FRESH_SECONDS = 300  # a call whose timestamp is further from now than this is not accepted


class HookReceiver:
    """A drain hook server on 127.0.0.1. Each call is recorded as a dict: body (parsed), raw,
    signature, timestamp, signed (the signature matches and the timestamp is fresh) and at (when
    it arrived, time.time()). An unsigned call gets a 401; with `veto` set, a pre-migrate call is
    answered {"proceed": false, "reason": veto_reason}. Use as a context manager."""

    def __init__(self, secret: str, veto_reason: str = "maintenance") -> None:
        self.secret = secret
        self.veto_reason = veto_reason
        self.veto = False
        self.calls: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                status, answer = receiver._receive(
                    self.rfile.read(int(self.headers["Content-Length"])),
                    self.headers.get("X-Kumo-Signature", ""),
                    self.headers.get("X-Kumo-Timestamp", ""),
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/drain"

    def signature(self, timestamp: str, raw: bytes) -> str:
        digest = hmac.new(self.secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
        return "sha256=" + digest.hexdigest()

    def _receive(self, raw: bytes, signature: str, timestamp: str) -> tuple[int, dict[str, Any]]:
        body = json.loads(raw)
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < FRESH_SECONDS
        signed = bool(fresh) and hmac.compare_digest(self.signature(timestamp, raw), signature)
        self.calls.append(
            {
                "body": body,
                "raw": raw,
                "signature": signature,
                "timestamp": timestamp,
                "signed": signed,
                "at": time.time(),
            }
        )
        if not signed:
            return 401, {}
        if self.veto and body.get("event") == "pre-migrate":
            return 200, {"proceed": False, "reason": self.veto_reason}
        return 200, {}

    def reset(self, veto: bool = False) -> None:
        self.calls, self.veto = [], veto

    def __enter__(self) -> HookReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
