"""Set-up steps shared by functional tests of several areas (and the browser tests): a flavor,
an uploaded image, a canary's report."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx


def make_flavor(c: httpx.Client, name: str, *, vcpus: int = 1, ram: int = 512, disk: int = 1) -> str:
    resp = c.post(
        "/compute/v2.1/flavors", json={"flavor": {"name": name, "vcpus": vcpus, "ram": ram, "disk": disk}}
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["flavor"]["id"])


def upload_image(c: httpx.Client, *, name: str = "img", content: bytes = b"x" * 1024) -> str:
    """A public raw image with `content` as its data."""
    image = c.post(
        "/image/v2/images",
        json={"name": name, "disk_format": "raw", "container_format": "bare", "visibility": "public"},
    ).json()
    upload = c.put(
        f"/image/v2/images/{image['id']}/file",
        content=content,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 204, upload.text
    return str(image["id"])


def canary_report(host: str, ok: bool, server_id: str | None = None) -> dict[str, Any]:
    """A host canary's report as `kumo canary` sends it: create, then active (failing or not),
    each step with its request id `req-canary-<step>-<host>`."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat()
    active: dict[str, Any] = {
        "step": "active",
        "ok": ok,
        "request_id": f"req-canary-active-{host}",
        "seconds": 1.0,
    }
    if not ok:
        active["detail"] = "ERROR"
    return {
        "canary": {
            "scope": "host",
            "target": host,
            "availability_zone": "nova",
            "host": host,
            "ok": ok,
            "failed_step": None if ok else "active",
            "error": None if ok else "the server went to ERROR",
            "steps": [
                {"step": "create", "ok": True, "request_id": f"req-canary-create-{host}", "seconds": 0.3},
                active,
            ],
            "server_id": server_id,
            "started_at": now,
            "finished_at": now,
        }
    }
