"""Keystone v3 admin API: domains, projects, users, roles, role assignments, and read-only
services/endpoints/regions. Thin routes: parse → domain function (which authorizes) → view."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.identity import admin, service, views
from kumo.identity.lockout import Lockout
from kumo.runtime import Runtime

router = APIRouter(prefix="/identity")

Ctx = Annotated[RequestContext, Depends(context)]
Rt = Annotated[Runtime, Depends(runtime)]
Body = dict[str, Any]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _url(request: Request) -> str:
    return str(request.url)


def _flag(value: str | None) -> bool | None:
    """Keystone's boolean query filters: absent → no filter; "0"/"false" → False; else True."""
    if value in (None, "None"):
        return None
    return value.strip().lower() not in ("0", "false")


def _ref(value: str | None) -> str | None:
    """An id-valued filter; the literal "None" some clients send for an unset one means absent."""
    return None if value in (None, "None") else value


def _no_content() -> Response:
    return Response(status_code=204)


def _catalog(request: Request, rt: Runtime) -> list[dict[str, Any]]:
    return service.catalog(_base(request), rt.settings.region)


# --- request envelopes ----------------------------------------------------------------------


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ProjectCreateBody(_Envelope):
    project: admin.ProjectCreate


class ProjectUpdateBody(_Envelope):
    project: admin.ProjectUpdate


class UserCreateBody(_Envelope):
    user: admin.UserCreate


class UserUpdateBody(_Envelope):
    user: admin.UserUpdate


class PasswordChangeBody(_Envelope):
    user: admin.PasswordChange


class RoleCreateBody(_Envelope):
    role: admin.RoleCreate


class RoleUpdateBody(_Envelope):
    role: admin.RoleUpdate


# --- domains --------------------------------------------------------------------------------


@router.get("/v3/domains")
def list_domains(request: Request, ctx: Ctx, name: str | None = None, enabled: str | None = None) -> Body:
    domains = admin.list_domains(ctx, name=name, enabled=_flag(enabled))
    return views.collection("domains", (views.domain(d, _base(request)) for d in domains), _url(request))


@router.get("/v3/domains/{domain_id}")
def show_domain(request: Request, ctx: Ctx, domain_id: str) -> Body:
    return {"domain": views.domain(admin.get_domain(ctx, domain_id), _base(request))}


# --- projects -------------------------------------------------------------------------------


@router.get("/v3/projects")
def list_projects(
    request: Request,
    ctx: Ctx,
    rt: Rt,
    name: str | None = None,
    domain_id: str | None = None,
    enabled: str | None = None,
    parent_id: str | None = None,
    is_domain: str | None = None,
) -> Body:
    with rt.db.read() as session:
        projects = admin.list_projects(
            session,
            ctx,
            name=name,
            domain_id=_ref(domain_id),
            enabled=_flag(enabled),
            parent_id=_ref(parent_id),
            is_domain=_flag(is_domain),
        )
    return views.collection("projects", (views.project(p, _base(request)) for p in projects), _url(request))


@router.post("/v3/projects", status_code=201)
def create_project(request: Request, body: ProjectCreateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        project = admin.create_project(session, ctx, body.project)
    return {"project": views.project(project, _base(request))}


@router.get("/v3/projects/{project_id}")
def show_project(request: Request, project_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        project = admin.get_project(session, ctx, project_id)
    return {"project": views.project(project, _base(request))}


@router.patch("/v3/projects/{project_id}")
def update_project(request: Request, project_id: str, body: ProjectUpdateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        project = admin.update_project(session, ctx, project_id, body.project)
    rt.tokens.refresh_soon()  # this worker sees the revocation at once
    return {"project": views.project(project, _base(request))}


@router.delete("/v3/projects/{project_id}", status_code=204)
def delete_project(project_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        admin.delete_project(session, ctx, project_id)
    rt.tokens.refresh_soon()  # this worker sees the revocation at once
    return _no_content()


# --- users ----------------------------------------------------------------------------------


@router.get("/v3/users")
def list_users(
    request: Request,
    ctx: Ctx,
    rt: Rt,
    name: str | None = None,
    domain_id: str | None = None,
    enabled: str | None = None,
) -> Body:
    with rt.db.read() as session:
        users = admin.list_users(session, ctx, name=name, domain_id=_ref(domain_id), enabled=_flag(enabled))
    return views.collection("users", (views.user(u, _base(request)) for u in users), _url(request))


@router.post("/v3/users", status_code=201)
def create_user(request: Request, body: UserCreateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        user = admin.create_user(session, ctx, body.user)
    return {"user": views.user(user, _base(request))}


@router.get("/v3/users/{user_id}")
def show_user(request: Request, user_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        user = admin.get_user(session, ctx, user_id)
    return {"user": views.user(user, _base(request))}


@router.patch("/v3/users/{user_id}")
def update_user(request: Request, user_id: str, body: UserUpdateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        user = admin.update_user(session, ctx, user_id, body.user)
    rt.tokens.refresh_soon()  # this worker sees the revocation at once
    return {"user": views.user(user, _base(request))}


@router.delete("/v3/users/{user_id}", status_code=204)
def delete_user(user_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        admin.delete_user(session, ctx, user_id)
    rt.tokens.refresh_soon()  # this worker sees the revocation at once
    return _no_content()


@router.post("/v3/users/{user_id}/password", status_code=204)
def change_password(user_id: str, body: PasswordChangeBody, rt: Rt) -> Response:
    # No token needed: the original password is the credential (as in Keystone).
    admin.change_password(rt.db, Lockout.of(rt.settings), user_id, body.user)
    rt.tokens.refresh_soon()  # this worker sees the revocation at once
    return _no_content()


@router.get("/v3/users/{user_id}/projects")
def list_user_projects(
    request: Request,
    user_id: str,
    ctx: Ctx,
    rt: Rt,
    name: str | None = None,
    enabled: str | None = None,
) -> Body:
    with rt.db.read() as session:
        projects = admin.list_user_projects(session, ctx, user_id, name=name, enabled=_flag(enabled))
    return views.collection("projects", (views.project(p, _base(request)) for p in projects), _url(request))


# --- roles ----------------------------------------------------------------------------------


@router.get("/v3/roles")
def list_roles(
    request: Request, ctx: Ctx, rt: Rt, name: str | None = None, domain_id: str | None = None
) -> Body:
    with rt.db.read() as session:
        roles = admin.list_roles(session, ctx, name=name, domain_id=_ref(domain_id))
    return views.collection("roles", (views.role(r, _base(request)) for r in roles), _url(request))


@router.post("/v3/roles", status_code=201)
def create_role(request: Request, body: RoleCreateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        role = admin.create_role(session, ctx, body.role)
    return {"role": views.role(role, _base(request))}


@router.get("/v3/roles/{role_id}")
def show_role(request: Request, role_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        role = admin.get_role(session, ctx, role_id)
    return {"role": views.role(role, _base(request))}


@router.patch("/v3/roles/{role_id}")
def update_role(request: Request, role_id: str, body: RoleUpdateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        role = admin.update_role(session, ctx, role_id, body.role)
    return {"role": views.role(role, _base(request))}


@router.delete("/v3/roles/{role_id}", status_code=204)
def delete_role(role_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        admin.delete_role(session, ctx, role_id)
    return _no_content()


# --- implied roles --------------------------------------------------------------------------

_IMPLIES = "/v3/roles/{prior_id}/implies/{implied_id}"


def _inference_body(request: Request, inference: admin.Inference) -> Body:
    return {
        "role_inference": views.inference(inference, _base(request), single=True),
        "links": {"self": _url(request)},
    }


@router.put(_IMPLIES, status_code=201)
def create_implied_role(request: Request, prior_id: str, implied_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        inference = admin.create_implied_role(session, ctx, prior_id, implied_id)
    return _inference_body(request, inference)


@router.get(_IMPLIES)
def show_implied_role(request: Request, prior_id: str, implied_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        inference = admin.get_implied_role(session, ctx, prior_id, implied_id)
    return _inference_body(request, inference)


@router.head(_IMPLIES, status_code=204)
def check_implied_role(prior_id: str, implied_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.read() as session:
        admin.get_implied_role(session, ctx, prior_id, implied_id)
    return _no_content()


@router.delete(_IMPLIES, status_code=204)
def delete_implied_role(prior_id: str, implied_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        admin.delete_implied_role(session, ctx, prior_id, implied_id)
    return _no_content()


@router.get("/v3/roles/{prior_id}/implies")
def list_implied_roles(request: Request, prior_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        inference = admin.list_implied_roles(session, ctx, prior_id)
    return {"role_inference": views.inference(inference, _base(request)), "links": {"self": _url(request)}}


@router.get("/v3/role_inferences")
def list_role_inferences(request: Request, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        inferences = admin.list_role_inferences(session, ctx)
    return {
        "role_inferences": [views.inference(i, _base(request)) for i in inferences],
        "links": {"self": _url(request)},
    }


# --- role assignments -----------------------------------------------------------------------

_GRANT = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"


@router.put(_GRANT, status_code=204)
def grant_role(project_id: str, user_id: str, role_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        admin.grant_role(session, ctx, project_id, user_id, role_id)
    return _no_content()


@router.head(_GRANT, status_code=204)
@router.get(_GRANT, status_code=204)
def check_role(project_id: str, user_id: str, role_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.read() as session:
        admin.check_role(session, ctx, project_id, user_id, role_id)
    return _no_content()


@router.delete(_GRANT, status_code=204)
def revoke_role(project_id: str, user_id: str, role_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        admin.revoke_role(session, ctx, project_id, user_id, role_id)
    rt.tokens.refresh_soon()  # this worker sees the revocation at once
    return _no_content()


@router.get("/v3/projects/{project_id}/users/{user_id}/roles")
def list_project_user_roles(request: Request, project_id: str, user_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        roles = admin.roles_of_user_on_project(session, ctx, project_id, user_id)
    return views.collection("roles", (views.role(r, _base(request)) for r in roles), _url(request))


@router.get("/v3/role_assignments")
def list_role_assignments(
    request: Request,
    ctx: Ctx,
    rt: Rt,
    user_id: Annotated[str | None, Query(alias="user.id")] = None,
    project_id: Annotated[str | None, Query(alias="scope.project.id")] = None,
    role_id: Annotated[str | None, Query(alias="role.id")] = None,
    group_id: Annotated[str | None, Query(alias="group.id")] = None,
    domain_id: Annotated[str | None, Query(alias="scope.domain.id")] = None,
    system: Annotated[str | None, Query(alias="scope.system")] = None,
    include_names: str | None = None,
    effective: str | None = None,
) -> Body:
    flt = admin.AssignmentFilter(
        user_id=_ref(user_id),
        project_id=_ref(project_id),
        role_id=_ref(role_id),
        other_scope=any(_ref(v) is not None for v in (group_id, domain_id, system)),
        effective=effective is not None and _flag(effective) is not False,
    )
    with rt.db.read() as session:
        rows = admin.list_assignments(session, ctx, flt)
    names = bool(_flag(include_names))
    return views.collection(
        "role_assignments", (views.assignment(a, _base(request), names) for a in rows), _url(request)
    )


# --- catalog (read-only) --------------------------------------------------------------------


@router.get("/v3/services")
def list_services(
    request: Request, ctx: Ctx, rt: Rt, type: str | None = None, name: str | None = None
) -> Body:
    services = admin.list_services(ctx, _catalog(request, rt), type=type, name=name)
    return views.collection("services", (views.service(s, _base(request)) for s in services), _url(request))


@router.get("/v3/services/{service_id}")
def show_service(request: Request, service_id: str, ctx: Ctx, rt: Rt) -> Body:
    return {
        "service": views.service(admin.get_service(ctx, _catalog(request, rt), service_id), _base(request))
    }


@router.get("/v3/endpoints")
def list_endpoints(
    request: Request,
    ctx: Ctx,
    rt: Rt,
    service_id: str | None = None,
    interface: str | None = None,
    region_id: str | None = None,
) -> Body:
    endpoints = admin.list_endpoints(
        ctx, _catalog(request, rt), service_id=service_id, interface=interface, region_id=region_id
    )
    return views.collection(
        "endpoints", (views.endpoint(e, _base(request)) for e in endpoints), _url(request)
    )


@router.get("/v3/endpoints/{endpoint_id}")
def show_endpoint(request: Request, endpoint_id: str, ctx: Ctx, rt: Rt) -> Body:
    endpoint = admin.get_endpoint(ctx, _catalog(request, rt), endpoint_id)
    return {"endpoint": views.endpoint(endpoint, _base(request))}


@router.get("/v3/regions")
def list_regions(request: Request, ctx: Ctx, rt: Rt) -> Body:
    regions = admin.list_regions(ctx, rt.settings.region)
    return views.collection("regions", (views.region(r, _base(request)) for r in regions), _url(request))


@router.get("/v3/regions/{region_id}")
def show_region(request: Request, region_id: str, ctx: Ctx, rt: Rt) -> Body:
    return {"region": views.region(admin.get_region(ctx, rt.settings.region, region_id), _base(request))}
