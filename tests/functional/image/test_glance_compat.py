"""Glance's smaller contracts: its error bodies (webob's, negotiated by Accept), the integer
filters of the image list, the empty-id paths, an image's (empty) task list, and the read-only
metadata definitions."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.functional.image.conftest import create, upload

MISSING = "00000000-0000-0000-0000-000000000000"


def test_an_error_is_html_for_any_accept(admin: httpx.Client) -> None:
    """python-glanceclient and openstacksdk send `Accept: */*`: webob's HTML page."""
    resp = admin.get(f"/image/v2/images/{MISSING}", headers={"Accept": "*/*"})
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "text/html; charset=UTF-8"
    assert "<title>404 Not Found</title>" in resp.text
    assert f"No image found with ID {MISSING}<br /><br />" in resp.text


def test_an_error_is_json_when_json_is_asked_for(admin: httpx.Client) -> None:
    resp = admin.get(f"/image/v2/images/{MISSING}", headers={"Accept": "application/json"})
    assert resp.status_code == 404 and resp.headers["content-type"] == "application/json"
    assert resp.json() == {
        "message": f"No image found with ID {MISSING}<br /><br />\n\n\n",
        "code": "404 Not Found",
        "title": "Not Found",
    }
    bad = admin.post(
        "/image/v2/images", json={"visibility": "galactic"}, headers={"Accept": "application/json"}
    )
    assert bad.status_code == 400 and bad.json()["code"] == "400 Bad Request"


@pytest.mark.parametrize("accept", [None, "text/plain", "image/png"])
def test_an_error_is_plain_text_otherwise(admin: httpx.Client, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    request = admin.build_request("GET", f"/image/v2/images/{MISSING}", headers=headers)
    if accept is None:
        del request.headers["Accept"]
    resp = admin.send(request)
    assert resp.status_code == 404 and resp.headers["content-type"] == "text/plain; charset=UTF-8"
    assert resp.text == f"404 Not Found\n\nNo image found with ID {MISSING}\n\n   "


def test_every_top_level_value_of_a_json_error_is_what_glanceclient_can_read(admin: httpx.Client) -> None:
    """python-glanceclient reads `obj.get('message') for obj in body.values()` from a JSON error:
    kumo's old body had an integer there (`'int' object has no attribute 'get'`). Glance's clients
    never ask for JSON, and get HTML, which they strip of tags."""
    resp = admin.get(f"/image/v2/images/{MISSING}")
    assert not resp.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        resp.json()


def test_empty_id_paths_are_404(admin: httpx.Client) -> None:
    create(admin)
    assert admin.get("/image/v2/images/").status_code == 404
    assert admin.delete("/image/v2/images/").status_code == 404
    assert len(admin.get("/image/v2/images").json()["images"]) == 1


def test_an_image_has_no_tasks(admin: httpx.Client, demo: httpx.Client) -> None:
    """GET /v2/images/{id}/tasks (what tempest waits on after a backup): kumo runs no import
    task, so an image's list is empty; an image the caller cannot see is a 404."""
    image = create(admin)  # private to the admin's project
    resp = admin.get(f"/image/v2/images/{image['id']}/tasks")
    assert resp.status_code == 200 and resp.json() == {"tasks": []}
    assert demo.get(f"/image/v2/images/{image['id']}/tasks").status_code == 404
    assert admin.get(f"/image/v2/images/{MISSING}/tasks").status_code == 404


def test_integer_filters(admin: httpx.Client) -> None:
    small, large = create(admin, name="small", min_ram=64), create(admin, name="large", min_disk=2)
    assert upload(admin, small["id"], b"x" * 1000).status_code == 204
    assert upload(admin, large["id"], b"y" * 3000).status_code == 204
    create(admin, name="empty")  # no data: no size, matched by no size filter

    def names(**params: str | int) -> set[str]:
        resp = admin.get("/image/v2/images", params=params)
        assert resp.status_code == 200, resp.text
        return {i["name"] for i in resp.json()["images"]}

    assert names(size=1000) == {"small"}
    assert names(size=3000) == {"large"}
    assert names(size=1) == set()
    assert names(size_min=500, size_max=1500) == {"small"}
    assert names(size_min=1001) == {"large"}
    assert names(size_max=2999) == {"small"}
    assert names(min_ram=64) == {"small"}
    assert names(min_disk=2) == {"large"}
    checksum = admin.get(f"/image/v2/images/{small['id']}").json()["checksum"]
    assert names(checksum=checksum) == {"small"}
    for bad in ({"size": "big"}, {"size_min": "-1"}, {"min_ram": "1.5"}):
        assert admin.get("/image/v2/images", params=bad).status_code == 400, bad


def test_metadefs_are_read_only_and_empty(admin: httpx.Client, demo: httpx.Client) -> None:
    listed = demo.get("/image/v2/metadefs/namespaces")
    assert listed.status_code == 200
    assert listed.json() == {
        "namespaces": [],
        "first": "/v2/metadefs/namespaces",
        "schema": "/v2/schemas/metadefs/namespaces",
    }
    assert demo.get("/image/v2/metadefs/namespaces/OS::Compute::Quota").status_code == 404
    assert demo.get("/image/v2/metadefs/resource_types").json() == {"resource_types": []}
    for name in ("namespace", "namespaces", "object", "objects", "property", "properties", "tag", "tags"):
        schema = demo.get(f"/image/v2/schemas/metadefs/{name}")
        assert schema.status_code == 200 and schema.json()["name"] == name
    # the resource type schemas are named for what they describe: a namespace's associations
    for name, named in (
        ("resource_type", "resource_type_association"),
        ("resource_types", "resource_type_associations"),
    ):
        schema = demo.get(f"/image/v2/schemas/metadefs/{name}")
        assert schema.status_code == 200 and schema.json()["name"] == named
    namespaces = demo.get("/image/v2/schemas/metadefs/namespaces").json()
    assert namespaces["properties"]["namespaces"]["items"]["required"] == ["namespace"]
    assert demo.get("/image/v2/schemas/metadefs/nothing").status_code == 404
    assert admin.post("/image/v2/metadefs/namespaces", json={"namespace": "x"}).status_code == 405
