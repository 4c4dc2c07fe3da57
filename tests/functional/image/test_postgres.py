"""The image API's SQL on PostgreSQL: keyset paging over nullable keys, JSON columns, upload."""

from __future__ import annotations

import hashlib

import pytest

from tests.conftest import DEMO_PASSWORD, Cloud
from tests.functional.image.conftest import OCTETS, create, patch


@pytest.mark.postgres
def test_image_lifecycle_on_postgres(pg_cloud: Cloud) -> None:
    with pg_cloud.client() as admin, pg_cloud.client(pg_cloud.token("demo", DEMO_PASSWORD, "demo")) as demo:
        for name in ("b", None, "a", "c"):
            admin.post("/image/v2/images", json={"name": name, "visibility": "public"})
        create(admin, name="secret", visibility="private")

        first = demo.get("/image/v2/images", params={"limit": 2, "sort": "name:asc"}).json()
        rest = demo.get("/image" + first["next"]).json()
        assert [i["name"] for i in first["images"] + rest["images"]] == [None, "a", "b", "c"]
        assert "next" not in rest

        image = create(demo, name="data", tags=["x"])
        chunks = [b"0123456789" * 10_000, b"tail"]
        resp = demo.put(f"/image/v2/images/{image['id']}/file", content=iter(chunks), headers=OCTETS)
        assert resp.status_code == 204, resp.text
        data = b"".join(chunks)
        assert demo.get(f"/image/v2/images/{image['id']}/file").content == data
        shown = demo.get(f"/image/v2/images/{image['id']}").json()
        assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()

        resp = patch(demo, image["id"], [{"op": "add", "path": "/os_distro", "value": "debian"}])
        assert resp.status_code == 200
        for params in ({"os_distro": "debian"}, {"tag": "x"}):
            listed = demo.get("/image/v2/images", params=params).json()["images"]
            assert [i["id"] for i in listed] == [image["id"]], params
        assert demo.delete(f"/image/v2/images/{image['id']}").status_code == 204
        assert demo.get(f"/image/v2/images/{image['id']}").status_code == 404


@pytest.mark.postgres
def test_owner_longer_than_a_project_id_is_a_400_on_postgres(pg_cloud: Cloud) -> None:
    """The owner column holds a project id (64 characters): a longer owner was a 500 here."""
    with pg_cloud.client() as admin:
        assert admin.post("/image/v2/images", json={"owner": "o" * 65}).status_code == 400
        image = create(admin, owner="o" * 64)
        resp = patch(admin, image["id"], [{"op": "replace", "path": "/owner", "value": "o" * 65}])
        assert resp.status_code == 400, resp.text
        assert admin.get("/image/v2/schemas/image").json()["properties"]["owner"]["maxLength"] == 64
