"""What the identity functional tests share: reading a creation's body and checking a Keystone error."""

from __future__ import annotations

from typing import Any

import httpx


def made(resp: httpx.Response, kind: str) -> dict[str, Any]:
    """The `kind` a 201 answer holds."""
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()[kind]
    return body


def keystone_error(resp: httpx.Response, status: int) -> None:
    """A Keystone error body of this status."""
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == status
