"""Image data: streamed upload (with and without Content-Length), download, checksums, states."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator

import httpx

from tests.conftest import Cloud
from tests.functional.image.conftest import OCTETS, RawChunkedUpload, create, upload


def _status(client: httpx.Client, image_id: str) -> str:
    return str(client.get(f"/image/v2/images/{image_id}").json()["status"])


def _wait_status(client: httpx.Client, image_id: str, wanted: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while _status(client, image_id) != wanted:
        assert time.monotonic() < deadline, f"image never reached {wanted}"
        time.sleep(0.05)


def _visible_files(cloud: Cloud) -> list[str]:
    root = cloud.settings.resolved_image_dir
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []


def _all_files(cloud: Cloud) -> list[str]:
    root = cloud.settings.resolved_image_dir
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_chunked_upload_without_content_length_then_download(admin: httpx.Client, cloud: Cloud) -> None:
    parts = [os.urandom(100_000) for _ in range(7)] + [b"tail"]
    data = b"".join(parts)
    image = create(admin)
    assert image["status"] == "queued" and image["size"] is None and image["checksum"] is None

    def body() -> Iterator[bytes]:
        yield from parts

    resp = admin.put(f"/image/v2/images/{image['id']}/file", content=body(), headers=OCTETS)
    assert resp.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in resp.request.headers
    assert resp.status_code == 204, resp.text

    shown = admin.get(f"/image/v2/images/{image['id']}").json()
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()

    with admin.stream("GET", f"/image/v2/images/{image['id']}/file") as down:
        assert down.status_code == 200
        assert down.headers["content-md5"] == hashlib.md5(data).hexdigest()
        assert down.headers["content-type"] == "application/octet-stream"
        assert int(down.headers["content-length"]) == len(data)
        received = b"".join(down.iter_bytes())
    assert received == data
    assert _visible_files(cloud) == [image["id"]]


def test_upload_with_content_length(admin: httpx.Client) -> None:
    image = create(admin)
    assert upload(admin, image["id"], b"hello image").status_code == 204
    assert admin.get(f"/image/v2/images/{image['id']}/file").content == b"hello image"


def test_download_without_data_is_204(admin: httpx.Client) -> None:
    image = create(admin)
    resp = admin.get(f"/image/v2/images/{image['id']}/file")
    assert resp.status_code == 204
    assert resp.content == b""


def test_upload_to_active_image_is_409(admin: httpx.Client) -> None:
    image = create(admin)
    assert upload(admin, image["id"], b"first").status_code == 204
    resp = upload(admin, image["id"], b"second")
    assert resp.status_code == 409
    assert admin.get(f"/image/v2/images/{image['id']}/file").content == b"first"


def test_upload_needs_disk_and_container_format(admin: httpx.Client) -> None:
    resp = admin.post("/image/v2/images", json={"name": "bare"})
    image_id = resp.json()["id"]
    assert upload(admin, image_id, b"data").status_code == 400
    assert _status(admin, image_id) == "queued"


def test_upload_with_wrong_content_type_is_415(admin: httpx.Client) -> None:
    image = create(admin)
    url = f"/image/v2/images/{image['id']}/file"
    resp = admin.put(url, content=b"x", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415


def test_upload_to_unknown_image_is_404(admin: httpx.Client) -> None:
    assert upload(admin, "0f2a3d5e-1111-4222-8333-944455556666", b"x").status_code == 404


def test_upload_is_streamed_into_a_hidden_file_until_complete(admin: httpx.Client, cloud: Cloud) -> None:
    image = create(admin)
    raw = RawChunkedUpload(cloud, admin.headers["X-Auth-Token"], image["id"])
    raw.send(b"a" * 50_000)
    # The server is already consuming the body: the image is saving, but no data is visible yet.
    _wait_status(admin, image["id"], "saving")
    assert _visible_files(cloud) == []
    assert admin.get(f"/image/v2/images/{image['id']}/file").status_code == 204
    assert upload(admin, image["id"], b"concurrent").status_code == 409
    raw.send(b"b" * 50_000)
    assert raw.finish() == 204
    shown = admin.get(f"/image/v2/images/{image['id']}").json()
    assert shown["status"] == "active" and shown["size"] == 100_000
    assert _all_files(cloud) == [image["id"]]


def test_aborted_upload_leaves_no_data_and_image_queued(admin: httpx.Client, cloud: Cloud) -> None:
    image = create(admin)
    raw = RawChunkedUpload(cloud, admin.headers["X-Auth-Token"], image["id"])
    raw.send(b"partial" * 10_000)
    _wait_status(admin, image["id"], "saving")
    raw.abort()
    _wait_status(admin, image["id"], "queued")
    assert _all_files(cloud) == []
    shown = admin.get(f"/image/v2/images/{image['id']}").json()
    assert shown["size"] is None and shown["checksum"] is None
    # ... and a fresh upload then succeeds.
    assert upload(admin, image["id"], b"complete").status_code == 204
    assert admin.get(f"/image/v2/images/{image['id']}/file").content == b"complete"


def test_delete_removes_the_data(admin: httpx.Client, cloud: Cloud) -> None:
    image = create(admin)
    assert upload(admin, image["id"], b"bytes").status_code == 204
    assert _visible_files(cloud) == [image["id"]]
    assert admin.delete(f"/image/v2/images/{image['id']}").status_code == 204
    assert _all_files(cloud) == []
    assert admin.get(f"/image/v2/images/{image['id']}/file").status_code == 404


def test_deactivated_image_data_is_forbidden_to_non_admins(admin: httpx.Client, demo: httpx.Client) -> None:
    image = create(demo)
    assert upload(demo, image["id"], b"payload").status_code == 204
    assert demo.post(f"/image/v2/images/{image['id']}/actions/deactivate").status_code == 204
    assert _status(demo, image["id"]) == "deactivated"
    assert demo.get(f"/image/v2/images/{image['id']}/file").status_code == 403
    assert admin.get(f"/image/v2/images/{image['id']}/file").content == b"payload"
    assert demo.post(f"/image/v2/images/{image['id']}/actions/reactivate").status_code == 204
    assert demo.get(f"/image/v2/images/{image['id']}/file").content == b"payload"
    queued = create(demo)
    assert demo.post(f"/image/v2/images/{queued['id']}/actions/deactivate").status_code == 403
