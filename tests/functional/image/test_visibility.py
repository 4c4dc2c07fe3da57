"""Who sees and changes what: public, private, shared, community; admin sees everything."""

from __future__ import annotations

import httpx

from tests.functional.image.conftest import create, replace, upload


def _ids(client: httpx.Client, **params: str) -> set[str]:
    resp = client.get("/image/v2/images", params=params)
    assert resp.status_code == 200, resp.text
    return {i["id"] for i in resp.json()["images"]}


def test_visibility_rules(admin: httpx.Client, demo: httpx.Client) -> None:
    public = create(admin, name="public", visibility="public")["id"]
    private = create(admin, name="private", visibility="private")["id"]
    shared = create(admin, name="shared")["id"]
    community = create(admin, name="community", visibility="community")["id"]
    mine = create(demo, name="mine", visibility="private")["id"]

    # demo sees public images and its own; others' community images only when asked for.
    assert _ids(demo) == {public, mine}
    assert _ids(demo, visibility="community") == {community}
    assert _ids(demo, visibility="all") == {public, community, mine}
    assert _ids(demo, visibility="private") == {mine}
    assert _ids(demo, visibility="shared") == set()
    for hidden in (private, shared):
        assert demo.get(f"/image/v2/images/{hidden}").status_code == 404
        assert demo.get(f"/image/v2/images/{hidden}/file").status_code == 404
        assert demo.delete(f"/image/v2/images/{hidden}").status_code == 404
    assert demo.get(f"/image/v2/images/{community}").status_code == 200

    # admin sees everything, demo's private image included.
    assert _ids(admin) == {public, private, shared, community, mine}
    assert _ids(admin, visibility="private") == {private, mine}
    assert admin.get(f"/image/v2/images/{mine}").status_code == 200


def test_visible_but_not_owned_is_read_only(admin: httpx.Client, demo: httpx.Client) -> None:
    public = create(admin, name="public", visibility="public")
    assert upload(admin, public["id"], b"os").status_code == 204
    assert demo.get(f"/image/v2/images/{public['id']}/file").content == b"os"
    assert demo.delete(f"/image/v2/images/{public['id']}").status_code == 403
    assert replace(demo, public["id"], "name", "mine").status_code == 403
    assert demo.put(f"/image/v2/images/{public['id']}/tags/x").status_code == 403
    assert admin.get(f"/image/v2/images/{public['id']}").json()["name"] == "public"


def test_only_admin_publicizes(admin: httpx.Client, demo: httpx.Client) -> None:
    resp = demo.post("/image/v2/images", json={"name": "pub", "visibility": "public"})
    assert resp.status_code == 403
    image = create(demo, visibility="private")
    assert replace(demo, image["id"], "visibility", "public").status_code == 403
    assert replace(demo, image["id"], "visibility", "shared").status_code == 200
    resp = replace(admin, image["id"], "visibility", "public")
    assert resp.status_code == 200 and resp.json()["visibility"] == "public"


def test_owner_is_the_project_and_only_admin_reassigns_it(admin: httpx.Client, demo: httpx.Client) -> None:
    token = demo.headers["X-Auth-Token"]
    validated = demo.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token}).json()
    project_id = validated["token"]["project"]["id"]
    image = create(demo)
    assert image["owner"] == project_id
    assert demo.post("/image/v2/images", json={"owner": "someone-else"}).status_code == 403
    assert replace(admin, image["id"], "owner", "elsewhere").status_code == 200
    assert demo.get(f"/image/v2/images/{image['id']}").status_code == 404
