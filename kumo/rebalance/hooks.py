"""Drain hooks: the operator's webhook told before and after each rebalancer move (Pepabo's
`kubectl drain` / `consul maint -enable` before, and back after).

POST of a JSON body {"event": "pre-migrate" | "post-migrate", "action_plan", "action", "server":
{"id", "name", "project_id", "metadata"}, "source", "destination", "outcome"?} with the headers
X-Kumo-Event, X-Kumo-Timestamp (Unix seconds when sent) and X-Kumo-Signature: "sha256=" + hex
HMAC-SHA256 under the secret of the timestamp, a ".", then the body. A receiver checks the
signature and refuses a timestamp far from its clock, so a captured call cannot be replayed later.

A pre-migrate hook proceeds only on a 2xx answer whose JSON does not say {"proceed": false};
any other answer, an error, or no complete answer within the timeout (a deadline on the whole
call, not per read: a hook trickling its answer cannot hold the loop) vetoes the move (with the
reason). A post-migrate hook's answer is only logged. No URL configured: every move proceeds,
nothing is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)
PRE = "pre-migrate"
POST = "post-migrate"
SIGNATURE_HEADER = "X-Kumo-Signature"
TIMESTAMP_HEADER = "X-Kumo-Timestamp"
EVENT_HEADER = "X-Kumo-Event"
MAX_ANSWER_BYTES = 64 * 1024


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Kumo-Signature of a body sent at `timestamp` (the X-Kumo-Timestamp value)."""
    message = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Verdict:
    proceed: bool
    reason: str = ""


class DrainHooks:
    def __init__(
        self, url: str, secret: str, timeout: float, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self.url, self.secret, self.timeout, self.wall_clock = url, secret, timeout, wall_clock

    def call(self, event: str, body: dict[str, Any]) -> Verdict:
        """The hook's verdict, within `timeout` seconds of the call whatever the hook does."""
        if not self.url:
            return Verdict(True)
        payload = json.dumps({"event": event, **body}, sort_keys=True).encode()
        timestamp = str(int(self.wall_clock()))
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: event,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.secret, timestamp, payload),
        }
        deadline = time.monotonic() + self.timeout
        answer: list[Verdict] = []
        worker = threading.Thread(
            target=lambda: answer.append(self._post(event, payload, headers, deadline)),
            name="kumo-drain-hook",
            daemon=True,
        )
        worker.start()
        worker.join(self.timeout)
        if not answer:  # the thread ends at its next read past the deadline
            return self._failed(event, f"drain hook timed out after {self.timeout:g} s")
        return answer[0]

    def _post(self, event: str, payload: bytes, headers: dict[str, str], deadline: float) -> Verdict:
        try:
            with httpx.stream(
                "POST", self.url, content=payload, headers=headers, timeout=self.timeout
            ) as resp:
                content = b""
                for chunk in resp.iter_bytes():
                    content += chunk
                    if time.monotonic() > deadline:
                        return self._failed(event, f"drain hook timed out after {self.timeout:g} s")
                    if len(content) > MAX_ANSWER_BYTES:
                        return self._failed(event, "drain hook answered more than 64 KiB")
        except httpx.TimeoutException:
            return self._failed(event, f"drain hook timed out after {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return self._failed(event, f"drain hook unreachable: {exc}")
        if not resp.is_success:
            return self._failed(event, f"drain hook answered {resp.status_code}")
        try:
            answer = json.loads(content) if content else {}
        except ValueError:
            answer = {}
        if isinstance(answer, dict) and answer.get("proceed") is False:
            reason = str(answer.get("reason") or "no reason given")[:200]
            return Verdict(False, f"vetoed by drain hook: {reason}")
        return Verdict(True)

    def _failed(self, event: str, reason: str) -> Verdict:
        if event == POST:
            log.warning("post-migrate %s", reason)
        return Verdict(False, reason)
