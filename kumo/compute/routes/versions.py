"""Compute version discovery: GET / and GET /v2.1."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from kumo.compute import microversion as mv

router = APIRouter(prefix="/compute")
_UPDATED = "2013-07-23T11:33:21Z"


def _entry(
    request: Request, vid: str, version: str, min_version: str, status: str, path: str
) -> dict[str, Any]:
    return {
        "id": vid,
        "status": status,
        "version": version,
        "min_version": min_version,
        "updated": _UPDATED if vid == "v2.1" else "2011-01-21T11:33:21Z",
        "links": [{"rel": "self", "href": str(request.base_url).rstrip("/") + path}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}
        ],
    }


@router.get("")
@router.get("/")
def versions(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "versions": [
                _entry(request, "v2.0", "", "", "SUPPORTED", "/compute/v2/"),
                _entry(
                    request, "v2.1", str(mv.max_version()), str(mv.min_version()), "CURRENT", "/compute/v2.1/"
                ),
            ]
        }
    )


@router.get("/v2")
@router.get("/v2/")
def legacy_version(request: Request) -> dict[str, Any]:
    """The v2.0 entry's self link, followable as in Nova (the v2.1 API answers under it there)."""
    return {"version": _entry(request, "v2.0", "", "", "SUPPORTED", "/compute/v2/")}


@router.get("/v2.1")
@router.get("/v2.1/")
def version(request: Request) -> dict[str, Any]:
    return {
        "version": _entry(
            request, "v2.1", str(mv.max_version()), str(mv.min_version()), "CURRENT", "/compute/v2.1/"
        )
    }
