"""JSON-patch updates in Glance's two media types."""

from __future__ import annotations

from typing import Any

import httpx

from tests.functional.image.conftest import create, patch, replace, upload

V20 = "application/openstack-images-v2.0-json-patch"


def test_replace_add_remove(admin: httpx.Client) -> None:
    image = create(admin, name="old", os_distro="cirros", tags=["a"])
    resp = patch(
        admin,
        image["id"],
        [
            {"op": "replace", "path": "/name", "value": "new"},
            {"op": "add", "path": "/hw_disk_bus", "value": "scsi"},
            {"op": "add", "path": "/owner_specified.openstack~1object", "value": "images/new"},
            {"op": "remove", "path": "/os_distro"},
            {"op": "replace", "path": "/tags", "value": ["b", "c"]},
            {"op": "replace", "path": "/min_ram", "value": 256},
            {"op": "replace", "path": "/protected", "value": True},
            {"op": "replace", "path": "/visibility", "value": "community"},
        ],
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["name"] == "new"
    assert body["hw_disk_bus"] == "scsi"
    assert body["owner_specified.openstack/object"] == "images/new"
    assert "os_distro" not in body
    assert body["tags"] == ["b", "c"]
    assert body["min_ram"] == 256 and body["protected"] is True
    assert body["visibility"] == "community"
    assert admin.get(f"/image/v2/images/{image['id']}").json() == body


def test_add_replaces_an_existing_property_in_v21(admin: httpx.Client) -> None:
    image = create(admin, os_distro="cirros")
    resp = patch(admin, image["id"], [{"op": "add", "path": "/os_distro", "value": "ubuntu"}])
    assert resp.json()["os_distro"] == "ubuntu"


def test_v20_media_type(admin: httpx.Client) -> None:
    image = create(admin, os_distro="cirros")
    resp = patch(admin, image["id"], [{"replace": "/name", "value": "v20"}, {"remove": "/os_distro"}], V20)
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == "v20" and "os_distro" not in resp.json()
    # v2.0 "add" of an existing property is a conflict.
    patch(admin, image["id"], [{"add": "/k", "value": "1"}], V20)
    assert patch(admin, image["id"], [{"add": "/k", "value": "2"}], V20).status_code == 409


def test_patch_is_all_or_nothing(admin: httpx.Client) -> None:
    image = create(admin, name="keep")
    resp = patch(
        admin,
        image["id"],
        [
            {"op": "replace", "path": "/name", "value": "changed"},
            {"op": "replace", "path": "/disk_format", "value": "floppy"},
        ],
    )
    assert resp.status_code == 400
    assert admin.get(f"/image/v2/images/{image['id']}").json()["name"] == "keep"


def test_formats_are_frozen_once_data_is_uploaded(admin: httpx.Client) -> None:
    image = create(admin)
    assert replace(admin, image["id"], "disk_format", "qcow2").status_code == 200
    assert upload(admin, image["id"], b"data").status_code == 204
    assert replace(admin, image["id"], "disk_format", "raw").status_code == 403


# One cloud for the whole table: a case is one patch document and its expected status.
BAD_PATCHES: list[tuple[Any, int]] = [
    ([{"op": "replace", "path": "/visibility", "value": "everyone"}], 400),
    ([{"op": "replace", "path": "/min_disk", "value": -5}], 400),
    ([{"op": "add", "path": "/custom", "value": 7}], 400),
    ([{"op": "move", "path": "/name", "value": "x"}], 400),
    ([{"op": "replace", "path": "/name"}], 400),
    ([{"op": "replace", "path": "name", "value": "x"}], 400),
    ([{"op": "replace", "path": "/tags/0", "value": "x"}], 400),
    ({"op": "replace", "path": "/name", "value": "x"}, 400),
    (["replace"], 400),
    ([{"op": "replace", "path": "/status", "value": "active"}], 403),
    ([{"op": "replace", "path": "/checksum", "value": "0"}], 403),
    ([{"op": "replace", "path": "/id", "value": "x"}], 403),
    ([{"op": "remove", "path": "/name"}], 403),
    ([{"op": "remove", "path": "/absent"}], 409),
    ([{"op": "replace", "path": "/absent", "value": "x"}], 409),
]


def test_bad_patches(admin: httpx.Client) -> None:
    image = create(admin, name="untouched")
    for doc, status in BAD_PATCHES:
        resp = admin.patch(
            f"/image/v2/images/{image['id']}",
            json=doc,
            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
        )
        assert resp.status_code == status, (doc, resp.text)
    assert admin.get(f"/image/v2/images/{image['id']}").json()["name"] == "untouched"


def test_patch_media_type_and_body(admin: httpx.Client) -> None:
    image = create(admin)
    ops = [{"op": "replace", "path": "/name", "value": "x"}]
    assert patch(admin, image["id"], ops, "application/json").status_code == 415
    assert patch(admin, image["id"], ops, "application/json-patch+json").status_code == 415
    resp = admin.patch(
        f"/image/v2/images/{image['id']}",
        content=b"[{not json",
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
    )
    assert resp.status_code == 400
    assert patch(admin, "5c8f4a3e-0000-4000-8000-000000000000", ops).status_code == 404
