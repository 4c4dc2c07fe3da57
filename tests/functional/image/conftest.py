"""Clients for admin and demo, and small helpers shared by the image API tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import DEMO_PASSWORD, Cloud

PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def admin(cloud: Cloud) -> Iterator[httpx.Client]:
    with cloud.client() as client:
        yield client


@pytest.fixture
def demo(cloud: Cloud) -> Iterator[httpx.Client]:
    with cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as client:
        yield client


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"name": "img", "disk_format": "raw", "container_format": "bare", **fields}
    resp = client.post("/image/v2/images", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def upload(client: httpx.Client, image_id: str, data: bytes) -> httpx.Response:
    return client.put(f"/image/v2/images/{image_id}/file", content=data, headers=OCTETS)


def patch(
    client: httpx.Client, image_id: str, ops: list[dict[str, Any]], media_type: str = PATCH_TYPE
) -> httpx.Response:
    return client.patch(f"/image/v2/images/{image_id}", json=ops, headers={"Content-Type": media_type})


def replace(client: httpx.Client, image_id: str, attribute: str, value: Any) -> httpx.Response:
    return patch(client, image_id, [{"op": "replace", "path": f"/{attribute}", "value": value}])


class RawChunkedUpload:
    """A chunked PUT over a bare socket, so a test can pause mid-upload or drop the connection."""

    def __init__(self, cloud: Cloud, token: str, image_id: str) -> None:
        url = urlsplit(cloud.url)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=10)
        head = (
            f"PUT /image/v2/images/{image_id}/file HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"X-Auth-Token: {token}\r\nContent-Type: application/octet-stream\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        self.sock.sendall(head.encode())

    def send(self, data: bytes) -> None:
        self.sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def finish(self) -> int:
        self.sock.sendall(b"0\r\n\r\n")
        status_line = self.sock.makefile("rb").readline()
        self.sock.close()
        return int(status_line.split()[1])

    def abort(self) -> None:
        self.sock.close()
