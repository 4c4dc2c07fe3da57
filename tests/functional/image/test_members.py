"""Image members (Glance v2): the owner shares a `shared` image with projects, each member
accepts or rejects it, and the lists each project sees follow the membership."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import DEMO_PASSWORD, Cloud
from tests.functional.image.conftest import create, replace, upload


def _ids(client: httpx.Client, **params: str) -> set[str]:
    resp = client.get("/image/v2/images", params=params)
    assert resp.status_code == 200, resp.text
    return {i["id"] for i in resp.json()["images"]}


def project_member(cloud: Cloud, name: str) -> tuple[str, str]:
    """A new project with a user holding `member` on it: (project id, token)."""
    with cloud.client() as admin:
        project = admin.post("/identity/v3/projects", json={"project": {"name": name}}).json()["project"]
        user = admin.post(
            "/identity/v3/users", json={"user": {"name": f"{name}-user", "password": "pw-123456"}}
        )
        role = admin.get("/identity/v3/roles", params={"name": "member"}).json()["roles"][0]
        grant = f"/identity/v3/projects/{project['id']}/users/{user.json()['user']['id']}/roles/{role['id']}"
        assert admin.put(grant).status_code == 204
    return project["id"], cloud.token(f"{name}-user", "pw-123456", name)


@pytest.fixture
def other(cloud: Cloud) -> Iterator[tuple[str, httpx.Client]]:
    project, token = project_member(cloud, "other")
    with cloud.client(token) as client:
        yield project, client


def _add(client: httpx.Client, image_id: str, member: str) -> httpx.Response:
    return client.post(f"/image/v2/images/{image_id}/members", json={"member": member})


def _status(client: httpx.Client, image_id: str, member: str, status: str) -> httpx.Response:
    return client.put(f"/image/v2/images/{image_id}/members/{member}", json={"status": status})


def _share_accept_reject_and_remove(cloud: Cloud) -> None:
    other_id, other_token = project_member(cloud, "other")
    third_id, third_token = project_member(cloud, "third")
    with (
        cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as demo,
        cloud.client(other_token) as other_c,
        cloud.client(third_token) as third_c,
    ):
        _share_flow(demo, (other_id, other_c), (third_id, third_c))


def test_share_accept_reject_and_remove(cloud: Cloud) -> None:
    _share_accept_reject_and_remove(cloud)


@pytest.mark.postgres
def test_share_accept_reject_and_remove_on_postgres(pg_cloud: Cloud) -> None:
    _share_accept_reject_and_remove(pg_cloud)


def _share_flow(demo: httpx.Client, other: tuple[str, httpx.Client], third: tuple[str, httpx.Client]) -> None:
    other_id, other_c = other
    third_id, third_c = third
    image = create(demo, name="to-share")  # default visibility: shared
    assert upload(demo, image["id"], b"shared bytes").status_code == 204
    # Not shared yet: invisible to the other project.
    assert other_c.get(f"/image/v2/images/{image['id']}").status_code == 404

    resp = _add(demo, image["id"], other_id)
    assert resp.status_code == 200, resp.text
    member: dict[str, Any] = resp.json()
    assert {k: member[k] for k in ("image_id", "member_id", "status", "schema")} == {
        "image_id": image["id"],
        "member_id": other_id,
        "status": "pending",
        "schema": "/v2/schemas/member",
    }
    assert member["created_at"].endswith("Z") and member["updated_at"].endswith("Z")
    assert _add(demo, image["id"], other_id).status_code == 409
    assert _add(demo, image["id"], third_id).status_code == 200

    # Pending: the member may show and download it, but its list holds it only when asked.
    assert other_c.get(f"/image/v2/images/{image['id']}").status_code == 200
    assert other_c.get(f"/image/v2/images/{image['id']}/file").content == b"shared bytes"
    assert image["id"] not in _ids(other_c)
    assert _ids(other_c, member_status="pending") == {image["id"]}
    assert _ids(other_c, visibility="shared", member_status="all") == {image["id"]}
    assert other_c.get("/image/v2/images", params={"member_status": "maybe"}).status_code == 400

    # The owner sees every member; a member only itself.
    owner_view = demo.get(f"/image/v2/images/{image['id']}/members").json()
    assert owner_view["schema"] == "/v2/schemas/members"
    assert {m["member_id"] for m in owner_view["members"]} == {other_id, third_id}
    member_view = other_c.get(f"/image/v2/images/{image['id']}/members").json()["members"]
    assert [m["member_id"] for m in member_view] == [other_id]
    assert other_c.get(f"/image/v2/images/{image['id']}/members/{third_id}").status_code == 404
    assert demo.get(f"/image/v2/images/{image['id']}/members/{third_id}").json()["status"] == "pending"

    # Only the member moves its status; only the owner adds and removes.
    assert _status(demo, image["id"], other_id, "accepted").status_code == 403
    assert _status(third_c, image["id"], other_id, "accepted").status_code == 404
    assert _status(other_c, image["id"], other_id, "fine").status_code == 400
    accepted = _status(other_c, image["id"], other_id, "accepted")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert image["id"] in _ids(other_c)
    assert _ids(other_c, visibility="shared") == {image["id"]}
    assert _add(other_c, image["id"], "somebody").status_code == 403
    assert other_c.delete(f"/image/v2/images/{image['id']}/members/{third_id}").status_code == 404
    assert other_c.delete(f"/image/v2/images/{image['id']}/members/{other_id}").status_code == 403
    # A member may read the image, not change it.
    assert replace(other_c, image["id"], "name", "mine").status_code == 403

    rejected = _status(other_c, image["id"], other_id, "rejected")
    assert rejected.status_code == 200 and image["id"] not in _ids(other_c)
    assert _ids(other_c, member_status="rejected") == {image["id"]}

    assert demo.delete(f"/image/v2/images/{image['id']}/members/{other_id}").status_code == 204
    assert other_c.get(f"/image/v2/images/{image['id']}").status_code == 404
    assert demo.get(f"/image/v2/images/{image['id']}/members/{other_id}").status_code == 404
    assert third_c.get(f"/image/v2/images/{image['id']}").status_code == 200


def test_only_shared_images_have_members(
    admin: httpx.Client, demo: httpx.Client, other: tuple[str, httpx.Client]
) -> None:
    other_id, other_c = other
    for visibility in ("private", "community"):
        image = create(demo, visibility=visibility)
        resp = _add(demo, image["id"], other_id)
        assert (
            resp.status_code == 403 and f"{visibility.capitalize()} images do not have members" in resp.text
        )
        assert demo.get(f"/image/v2/images/{image['id']}/members").status_code == 403
    public = create(admin, visibility="public")
    assert _add(admin, public["id"], other_id).status_code == 403

    # Members of an image made private again lose it, and come back when it is shared again.
    image = create(demo)
    assert _add(demo, image["id"], other_id).status_code == 200
    assert replace(demo, image["id"], "visibility", "private").status_code == 200
    assert other_c.get(f"/image/v2/images/{image['id']}").status_code == 404
    assert replace(demo, image["id"], "visibility", "shared").status_code == 200
    assert other_c.get(f"/image/v2/images/{image['id']}").status_code == 200


def test_member_requests_are_validated(demo: httpx.Client, other: tuple[str, httpx.Client]) -> None:
    other_id, other_c = other
    image = create(demo)
    for body in ({}, {"member": ""}, {"member": 5}, {"member": "m" * 65}, ["x"]):
        assert demo.post(f"/image/v2/images/{image['id']}/members", json=body).status_code == 400, body
    assert _add(demo, image["id"], other_id).status_code == 200
    for body in ({}, {"status": None}, {"status": "ACCEPTED"}, "accepted"):
        resp = other_c.put(f"/image/v2/images/{image['id']}/members/{other_id}", json=body)
        assert resp.status_code == 400, body
    missing = "00000000-0000-0000-0000-000000000000"
    assert _add(demo, missing, other_id).status_code == 404
    assert demo.get(f"/image/v2/images/{missing}/members").status_code == 404


def test_deleting_an_image_deletes_its_members(demo: httpx.Client, other: tuple[str, httpx.Client]) -> None:
    other_id, other_c = other
    image = create(demo)
    assert _add(demo, image["id"], other_id).status_code == 200
    assert demo.delete(f"/image/v2/images/{image['id']}").status_code == 204
    assert _ids(other_c, member_status="all") == set()


def test_member_schemas(demo: httpx.Client) -> None:
    member = demo.get("/image/v2/schemas/member").json()
    assert member["name"] == "member"
    assert member["properties"]["status"]["enum"] == ["pending", "accepted", "rejected"]
    members = demo.get("/image/v2/schemas/members").json()
    assert members["properties"]["members"]["items"] == member
