"""Image records: discovery, create, show, list (filters, sorting, paging), tags, delete, errors."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import Cloud
from tests.functional.image.conftest import create


def test_version_discovery_points_at_v2(cloud: Cloud) -> None:
    resp = httpx.get(f"{cloud.url}/image")
    assert resp.status_code == 300
    versions = resp.json()["versions"]
    current = [v for v in versions if v["status"] == "CURRENT"]
    assert len(current) == 1 and current[0]["id"].startswith("v2.")
    assert {v["id"] for v in versions} >= {"v2.0", "v2.1"}
    for v in versions:
        assert v["links"] == [{"rel": "self", "href": f"{cloud.url}/image/v2/"}]


def test_image_api_needs_a_token(cloud: Cloud) -> None:
    resp = httpx.get(f"{cloud.url}/image/v2/images")
    assert resp.status_code == 401


def test_create_and_show(admin: httpx.Client) -> None:
    resp = admin.post(
        "/image/v2/images",
        json={
            "name": "cirros",
            "disk_format": "qcow2",
            "container_format": "bare",
            "min_disk": 1,
            "min_ram": 64,
            "protected": False,
            "tags": ["a", "b", "a"],
            "visibility": "private",
            "owner_specified.openstack.md5": "abc",
            "os_distro": "cirros",
        },
    )
    assert resp.status_code == 201, resp.text
    image = resp.json()
    assert uuid.UUID(image["id"])
    expected = {
        "name": "cirros",
        "status": "queued",
        "disk_format": "qcow2",
        "container_format": "bare",
        "min_disk": 1,
        "min_ram": 64,
        "protected": False,
        "os_hidden": False,
        "tags": ["a", "b"],
        "visibility": "private",
        "size": None,
        "virtual_size": None,
        "checksum": None,
        "os_hash_algo": None,
        "os_hash_value": None,
        "owner_specified.openstack.md5": "abc",
        "os_distro": "cirros",
        "self": f"/v2/images/{image['id']}",
        "file": f"/v2/images/{image['id']}/file",
        "schema": "/v2/schemas/image",
    }
    assert {k: image[k] for k in expected} == expected
    assert image["created_at"].endswith("Z") and image["updated_at"].endswith("Z")
    assert admin.get(f"/image/v2/images/{image['id']}").json() == image


def test_defaults(admin: httpx.Client) -> None:
    image = admin.post("/image/v2/images", json={}).json()
    assert image["visibility"] == "shared"
    assert image["name"] is None and image["disk_format"] is None
    assert image["min_disk"] == 0 and image["protected"] is False and image["tags"] == []


def test_create_with_id_and_duplicate_is_409(admin: httpx.Client) -> None:
    image_id = str(uuid.uuid4())
    assert create(admin, id=image_id)["id"] == image_id
    assert admin.post("/image/v2/images", json={"id": image_id}).status_code == 409


# One cloud for the whole table: a case is one request and its expected status.
BAD_CREATES: list[tuple[dict[str, Any], int]] = [
    ({"visibility": "everyone"}, 400),
    ({"disk_format": "exe"}, 400),
    ({"container_format": "zip"}, 400),
    ({"min_disk": -1}, 400),
    ({"min_ram": "512"}, 400),
    ({"protected": "yes"}, 400),
    ({"tags": "a,b"}, 400),
    ({"name": "x" * 256}, 400),
    ({"id": "not-a-uuid"}, 400),
    ({"custom": 5}, 400),
    ({"owner": "o" * 65}, 400),  # past the owner column (a project id): a 500 on PostgreSQL
    ({"status": "active"}, 403),
    ({"checksum": "0" * 32}, 403),
    ({"size": 10}, 403),
    ({"deleted": "true"}, 403),
]


def test_create_rejects_bad_input(admin: httpx.Client) -> None:
    for body, status in BAD_CREATES:
        resp = admin.post("/image/v2/images", json=body)
        assert resp.status_code == status, (body, resp.text)
        assert f"<h1>{status} " in resp.text  # Glance's HTML error, to httpx's `Accept: */*`
    assert admin.get("/image/v2/images").json()["images"] == []


def test_create_rejects_non_object_body(admin: httpx.Client) -> None:
    assert admin.post("/image/v2/images", json=["name"]).status_code == 400
    resp = admin.post("/image/v2/images", content=b"{oops", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400


def test_unknown_and_malformed_ids_are_404(admin: httpx.Client) -> None:
    assert admin.get(f"/image/v2/images/{uuid.uuid4()}").status_code == 404
    resp = admin.get("/image/v2/images/not-a-uuid")
    assert resp.status_code == 404
    assert "No image found with ID not-a-uuid" in resp.text
    assert admin.delete("/image/v2/images/not-a-uuid").status_code == 404


def test_delete(admin: httpx.Client) -> None:
    image = create(admin)
    assert admin.delete(f"/image/v2/images/{image['id']}").status_code == 204
    assert admin.get(f"/image/v2/images/{image['id']}").status_code == 404
    assert admin.delete(f"/image/v2/images/{image['id']}").status_code == 404


def test_protected_image_cannot_be_deleted(admin: httpx.Client) -> None:
    image = create(admin, protected=True)
    assert admin.delete(f"/image/v2/images/{image['id']}").status_code == 403
    assert admin.get(f"/image/v2/images/{image['id']}").status_code == 200


def test_tags(admin: httpx.Client) -> None:
    image = create(admin, tags=["one"])
    assert admin.put(f"/image/v2/images/{image['id']}/tags/two").status_code == 204
    assert admin.put(f"/image/v2/images/{image['id']}/tags/two").status_code == 204
    assert admin.get(f"/image/v2/images/{image['id']}").json()["tags"] == ["one", "two"]
    assert admin.delete(f"/image/v2/images/{image['id']}/tags/one").status_code == 204
    assert admin.delete(f"/image/v2/images/{image['id']}/tags/one").status_code == 404
    assert admin.get(f"/image/v2/images/{image['id']}").json()["tags"] == ["two"]


def _names(client: httpx.Client, **params: Any) -> list[str]:
    resp = client.get("/image/v2/images", params=params)
    assert resp.status_code == 200, resp.text
    return [i["name"] for i in resp.json()["images"]]


def test_list_filters(admin: httpx.Client) -> None:
    create(admin, name="alpha", tags=["x", "y"], os_distro="ubuntu")
    create(admin, name="beta", tags=["x"], disk_format="qcow2")
    create(admin, name="gamma", os_hidden=True)
    assert sorted(_names(admin)) == ["alpha", "beta"]
    assert _names(admin, name="beta") == ["beta"]
    assert sorted(_names(admin, name='in:"alpha","beta"')) == ["alpha", "beta"]
    assert _names(admin, disk_format="qcow2") == ["beta"]
    assert sorted(_names(admin, tag="x")) == ["alpha", "beta"]
    assert _names(admin, os_distro="ubuntu") == ["alpha"]
    assert _names(admin, os_hidden="true") == ["gamma"]
    assert sorted(_names(admin, status="queued")) == ["alpha", "beta"]
    assert _names(admin, status="active") == []


def test_list_multiple_tags_must_all_match(admin: httpx.Client) -> None:
    create(admin, name="alpha", tags=["x", "y"])
    create(admin, name="beta", tags=["x"])
    resp = admin.get("/image/v2/images", params=[("tag", "x"), ("tag", "y")])
    assert [i["name"] for i in resp.json()["images"]] == ["alpha"]


def test_list_sorting_and_paging(admin: httpx.Client) -> None:
    names = ["e", "b", "d", "a", "c"]
    for name in names:
        create(admin, name=name)
    assert _names(admin, sort_key="name", sort_dir="asc") == sorted(names)
    assert _names(admin, sort="name:desc") == sorted(names, reverse=True)
    assert _names(admin) == list(reversed(names))  # newest first by default

    seen: list[str] = []
    url: str | None = "/image/v2/images?limit=2&sort_key=name&sort_dir=asc"
    pages = 0
    while url:
        body = admin.get(url).json()
        seen += [i["name"] for i in body["images"]]
        assert len(body["images"]) <= 2
        url = "/image" + body["next"] if "next" in body else None
        pages += 1
    assert seen == sorted(names)
    assert pages == 3


def test_list_paging_with_nullable_sort_key(admin: httpx.Client) -> None:
    for name in ("b", None, "a", None):
        admin.post("/image/v2/images", json={"name": name})
    first = admin.get("/image/v2/images", params={"limit": 2, "sort_key": "name", "sort_dir": "asc"}).json()
    rest = admin.get("/image" + first["next"]).json()
    assert [i["name"] for i in first["images"] + rest["images"]] == [None, None, "a", "b"]
    assert len({i["id"] for i in first["images"] + rest["images"]}) == 4


BAD_LIST_PARAMS: list[dict[str, str]] = [
    {"limit": "x"},
    {"limit": "-1"},
    {"sort_key": "colour"},
    {"sort_dir": "sideways"},
    {"sort": "name:up"},
    {"sort": "name", "sort_key": "id"},
    {"visibility": "everyone"},
    {"status": "happy"},
    {"marker": str(uuid.uuid4())},
    {"size_min": "big"},
    {"created_at": "gt:yesterday"},
    # Valid ISO 8601, but outside years 1-9999 once in UTC: an OverflowError, a 500 before.
    {"created_at": "gte:0001-01-01T00:00:00+01:00"},
    {"updated_at": "lt:9999-12-31T23:59:59-01:00"},
]


def test_list_rejects_bad_parameters(admin: httpx.Client) -> None:
    for params in BAD_LIST_PARAMS:
        resp = admin.get("/image/v2/images", params=params)
        assert resp.status_code == 400, (params, resp.text)


def test_schemas(admin: httpx.Client) -> None:
    image = admin.get("/image/v2/schemas/image").json()
    assert image["name"] == "image"
    assert image["additionalProperties"] == {"type": "string"}
    assert "raw" in image["properties"]["disk_format"]["enum"]
    images = admin.get("/image/v2/schemas/images").json()
    assert images["properties"]["images"]["items"]["name"] == "image"
