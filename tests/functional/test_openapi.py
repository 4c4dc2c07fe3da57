"""The OpenAPI document at /openapi.json: served without a token, outside every OpenStack
service's prefix and catalog, and describing the real request bodies (not FastAPI's empty
defaults for bodies parsed by hand)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Cloud

# What FastAPI writes for `body: Any = Body(None)` / `dict[str, Any] = Body(...)` on its own.
_EMPTY = ({"title": "Body"}, {"type": "object", "additionalProperties": True, "title": "Body"})


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def _body_schema(operation: dict[str, Any]) -> dict[str, Any]:
    content = operation["requestBody"]["content"]
    (media_type,) = content
    schema: dict[str, Any] = content[media_type]["schema"]
    return schema


def test_document_is_served_without_a_token_and_not_in_the_catalog(cloud: Cloud) -> None:
    resp = httpx.get(f"{cloud.url}/openapi.json")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    document = resp.json()
    assert document["openapi"].startswith("3.") and document["info"]["title"] == "kumo"
    assert "/openapi.json" not in document["paths"]
    with cloud.client() as client:
        catalog = client.get("/identity/v3/auth/catalog").json()["catalog"]
    urls = [endpoint["url"] for service in catalog for endpoint in service["endpoints"]]
    assert urls and not any("openapi" in url for url in urls)


def test_every_request_body_is_described(cloud: Cloud) -> None:
    operations = _operations(httpx.get(f"{cloud.url}/openapi.json").json())
    with_body = {label: op for label, op in operations.items() if "requestBody" in op}
    assert len(with_body) >= 55
    empty = [label for label, op in with_body.items() if _body_schema(op) in _EMPTY]
    assert empty == []
    server = _body_schema(operations["POST /compute/v2.1/servers"])["properties"]["server"]
    assert {"name", "flavorRef", "imageRef", "min_count", "availability_zone"} <= set(server["properties"])
    assert server["required"] == ["name", "flavorRef"]
    actions = _body_schema(operations["POST /compute/v2.1/servers/{server_id}/action"])["oneOf"]
    assert {"os-start", "reboot", "os-migrateLive", "rebuild"} <= {
        next(iter(a["properties"])) for a in actions
    }
    patch = operations["PATCH /image/v2/images/{image_id}"]["requestBody"]["content"]
    assert patch["application/openstack-images-v2.1-json-patch"]["schema"]["type"] == "array"
    login = _body_schema(operations["POST /identity/v3/auth/tokens"])
    assert login["required"] == ["auth"]
    claim = _body_schema(operations["PUT /placement/allocations/{consumer}"])
    assert {"allocations", "project_id", "user_id", "consumer_generation"} == set(claim["required"])
    assert _body_schema(operations["POST /baremetal/v1/nodes"])["required"] == ["driver"]


def test_hand_read_query_strings_are_listed(cloud: Cloud) -> None:
    operations = _operations(httpx.get(f"{cloud.url}/openapi.json").json())
    names = {p["name"]: p["schema"] for p in operations["GET /compute/v2.1/servers/detail"]["parameters"]}
    assert names["limit"]["type"] == "integer" and "changes-since" in names and "all_tenants" in names
    candidates = operations["GET /placement/allocation_candidates"]["parameters"]
    assert {"resources", "required", "member_of", "limit"} <= {p["name"] for p in candidates}
