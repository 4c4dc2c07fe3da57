"""Keystone v3: version discovery and /v3/auth/*. Admin CRUD lives in admin_routes.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.errors import NotFound
from kumo.identity import auth_request, catalog, schemas, service, views
from kumo.identity.lockout import Lockout
from kumo.runtime import Runtime

router = APIRouter(prefix="/identity")
_UPDATED = "2024-01-01T00:00:00Z"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _v3(request: Request) -> dict[str, Any]:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": _UPDATED,
        "links": [{"rel": "self", "href": _base(request) + "/identity/v3/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }


@router.get("")
@router.get("/")
def versions(request: Request) -> Response:
    return JSONResponse({"versions": {"values": [_v3(request)]}}, status_code=300)


def _catalog(request: Request, rt: Runtime) -> list[dict[str, Any]]:
    """kumo's own catalog with the endpoints administrators stored (docs/identity.md)."""
    with rt.db.read() as session:
        return catalog.token_catalog(session, service.catalog(_base(request), rt.settings.region))


@router.get("/v3")
@router.get("/v3/")
def version(request: Request) -> dict[str, Any]:
    return {"version": _v3(request)}


@router.post("/v3/auth/tokens", status_code=201, openapi_extra=json_body(schemas.AUTH_TOKENS))
def issue_token(
    request: Request,
    body: dict[str, Any] = Body(...),
    nocatalog: str | None = None,
    rt: Runtime = Depends(runtime),
) -> Response:
    auth = auth_request.validated(body)
    issued = service.login(rt.db, rt.tokens, auth, Lockout.of(rt.settings))
    payload = service.token_body(issued.data, _catalog(request, rt) if nocatalog is None else None)
    return JSONResponse(payload, status_code=201, headers={"X-Subject-Token": issued.token})


def _subject(request: Request, rt: Runtime) -> tuple[str, Any]:
    subject = request.headers.get("x-subject-token")
    if not subject:
        raise NotFound("Could not find token: missing X-Subject-Token.")
    return subject, rt.tokens.verify(subject, subject=True)


@router.get("/v3/auth/tokens")
def validate_token(
    request: Request,
    nocatalog: str | None = None,
    _ctx: RequestContext = Depends(context),
    rt: Runtime = Depends(runtime),
) -> Response:
    subject, data = _subject(request, rt)
    payload = service.token_body(data, _catalog(request, rt) if nocatalog is None else None)
    return JSONResponse(payload, headers={"X-Subject-Token": subject})


@router.head("/v3/auth/tokens")
def check_token(
    request: Request, _ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    subject, _ = _subject(request, rt)
    return Response(status_code=200, headers={"X-Subject-Token": subject})


@router.delete("/v3/auth/tokens", status_code=204)
def revoke_token(
    request: Request, _ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> Response:
    _, data = _subject(request, rt)
    with rt.db.transaction() as session:
        service.revoke(session, rt.tokens, data)
    return Response(status_code=204)


@router.get("/v3/auth/catalog")
def auth_catalog(
    request: Request, _ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    return {
        "catalog": _catalog(request, rt),
        "links": {"self": str(request.url)},
    }


@router.get("/v3/auth/projects")
def auth_projects(
    request: Request, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        projects = service.projects_of_user(session, ctx.user_id)
    return views.collection(
        "projects", (views.project(p, _base(request)) for p in projects), str(request.url)
    )


@router.get("/v3/auth/domains")
def auth_domains(
    request: Request, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        domains = service.domains_of_user(session, ctx.user_id)
    return views.collection("domains", (views.domain(d, _base(request)) for d in domains), str(request.url))


@router.get("/v3/auth/system")
def auth_system(
    request: Request, ctx: RequestContext = Depends(context), rt: Runtime = Depends(runtime)
) -> dict[str, Any]:
    with rt.db.read() as session:
        system = service.system_scopes_of_user(session, ctx.user_id)
    return {"system": system, "links": {"self": str(request.url), "next": None, "previous": None}}
