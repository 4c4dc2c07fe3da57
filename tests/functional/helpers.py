"""Set-up steps shared by functional tests of several areas: a flavor, an uploaded image."""

from __future__ import annotations

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
