"""Drain hooks: the operator's webhook told before and after each rebalancer move (Pepabo's
`kubectl drain` / `consul maint -enable` before, and back after).

POST of a JSON body {"event": "pre-migrate" | "post-migrate", "action_plan", "action", "server":
{"id", "name", "project_id", "metadata"}, "source", "destination", "outcome"?} with the headers
X-Kumo-Event and X-Kumo-Signature: "sha256=" + hex HMAC-SHA256 of the body under the secret.
A pre-migrate hook proceeds only on a 2xx answer whose JSON does not say {"proceed": false};
any other answer, an error or a timeout vetoes the move (with the reason). A post-migrate
hook's answer is only logged. No URL configured: every move proceeds, nothing is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)
PRE = "pre-migrate"
POST = "post-migrate"
SIGNATURE_HEADER = "X-Kumo-Signature"
EVENT_HEADER = "X-Kumo-Event"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Verdict:
    proceed: bool
    reason: str = ""


class DrainHooks:
    def __init__(self, url: str, secret: str, timeout: float) -> None:
        self.url, self.secret, self.timeout = url, secret, timeout

    def call(self, event: str, body: dict[str, Any]) -> Verdict:
        if not self.url:
            return Verdict(True)
        payload = json.dumps({"event": event, **body}, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: event,
            SIGNATURE_HEADER: sign(self.secret, payload),
        }
        try:
            resp = httpx.post(self.url, content=payload, headers=headers, timeout=self.timeout)
        except httpx.TimeoutException:
            return self._failed(event, f"drain hook timed out after {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return self._failed(event, f"drain hook unreachable: {exc}")
        if not resp.is_success:
            return self._failed(event, f"drain hook answered {resp.status_code}")
        try:
            answer = resp.json() if resp.content else {}
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
