"""Keystone v3 admin API: domains, projects, users, roles, role assignments, and the catalog's
regions, services and endpoints. Thin routes: parse → domain function (which authorizes) → view."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

from cryptography.fernet import Fernet
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.identity import admin, app_creds, catalog, credentials, grants, limits, service, views
from kumo.identity.lockout import Lockout
from kumo.runtime import Runtime
from kumo.tags import TagFilter

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


def _listed(request: Request, key: str, view: Callable[[Any, str], Body], rows: Iterable[Any]) -> Body:
    """A collection answer: each row's `view`, under `key`, with the request's own link."""
    return views.collection(key, (view(row, _base(request)) for row in rows), _url(request))


def _no_content() -> Response:
    return Response(status_code=204)


def _catalog(request: Request, rt: Runtime) -> list[dict[str, Any]]:
    return service.catalog(_base(request), rt.settings.region)


def _own(request: Request, rt: Runtime) -> catalog.Own:
    return catalog.Own.of(_catalog(request, rt), rt.settings.region)


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


class DomainCreateBody(_Envelope):
    domain: admin.DomainCreate


class DomainUpdateBody(_Envelope):
    domain: admin.DomainUpdate


@router.get("/v3/domains")
def list_domains(
    request: Request, ctx: Ctx, rt: Rt, name: str | None = None, enabled: str | None = None
) -> Body:
    with rt.db.read() as session:
        domains = admin.list_domains(session, ctx, name=name, enabled=_flag(enabled))
    return _listed(request, "domains", views.domain, domains)


@router.post("/v3/domains", status_code=201)
def create_domain(request: Request, body: DomainCreateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        domain = admin.create_domain(session, ctx, body.domain)
    return {"domain": views.domain(domain, _base(request))}


@router.get("/v3/domains/{domain_id}")
def show_domain(request: Request, ctx: Ctx, rt: Rt, domain_id: str) -> Body:
    with rt.db.read() as session:
        domain = admin.get_domain(session, ctx, domain_id)
    return {"domain": views.domain(domain, _base(request))}


@router.patch("/v3/domains/{domain_id}")
def update_domain(request: Request, domain_id: str, body: DomainUpdateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        domain = admin.update_domain(session, ctx, domain_id, body.domain)
    rt.tokens.refresh_soon()  # this worker sees the revocation at once
    return {"domain": views.domain(domain, _base(request))}


@router.delete("/v3/domains/{domain_id}", status_code=204)
def delete_domain(domain_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        admin.delete_domain(session, ctx, domain_id)
    rt.tokens.refresh_soon()  # this worker sees the revocation at once
    return _no_content()


# --- groups ---------------------------------------------------------------------------------


class GroupCreateBody(_Envelope):
    group: admin.GroupCreate


class GroupUpdateBody(_Envelope):
    group: admin.GroupUpdate


@router.get("/v3/groups")
def list_groups(
    request: Request, ctx: Ctx, rt: Rt, name: str | None = None, domain_id: str | None = None
) -> Body:
    with rt.db.read() as session:
        groups = admin.list_groups(session, ctx, name=name, domain_id=_ref(domain_id))
    return _listed(request, "groups", views.group, groups)


@router.post("/v3/groups", status_code=201)
def create_group(request: Request, body: GroupCreateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        group = admin.create_group(session, ctx, body.group)
    return {"group": views.group(group, _base(request))}


@router.get("/v3/groups/{group_id}")
def show_group(request: Request, group_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        group = admin.get_group(session, ctx, group_id)
    return {"group": views.group(group, _base(request))}


@router.patch("/v3/groups/{group_id}")
def update_group(request: Request, group_id: str, body: GroupUpdateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        group = admin.update_group(session, ctx, group_id, body.group)
    return {"group": views.group(group, _base(request))}


@router.delete("/v3/groups/{group_id}", status_code=204)
def delete_group(group_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        admin.delete_group(session, ctx, group_id)
    rt.tokens.refresh_soon()  # this worker sees the revocation at once
    return _no_content()


@router.get("/v3/groups/{group_id}/users")
def list_group_users(request: Request, group_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        users = admin.list_group_users(session, ctx, group_id)
    return _listed(request, "users", views.user, users)


_MEMBER = "/v3/groups/{group_id}/users/{user_id}"


@router.put(_MEMBER, status_code=204)
def add_group_user(group_id: str, user_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        admin.add_member(session, ctx, group_id, user_id)
    return _no_content()


@router.head(_MEMBER, status_code=204)
@router.get(_MEMBER, status_code=204)
def check_group_user(group_id: str, user_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.read() as session:
        admin.check_member(session, ctx, group_id, user_id)
    return _no_content()


@router.delete(_MEMBER, status_code=204)
def remove_group_user(group_id: str, user_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        admin.remove_member(session, ctx, group_id, user_id)
    rt.tokens.refresh_soon()  # this worker sees the revocation at once
    return _no_content()


@router.get("/v3/users/{user_id}/groups")
def list_user_groups(request: Request, user_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        groups = admin.list_user_groups(session, ctx, user_id)
    return _listed(request, "groups", views.group, groups)


# --- projects -------------------------------------------------------------------------------


_TREE_FLAGS = ("parents_as_list", "subtree_as_list", "parents_as_ids", "subtree_as_ids")


def _present(request: Request, name: str) -> bool:
    """Keystone's flag parameters: given (even empty), and not "0" or "false"."""
    value = request.query_params.get(name)
    return value is not None and value.strip().lower() not in ("0", "false")


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
    tags = TagFilter.parse(dict(request.query_params))
    with rt.db.read() as session:
        projects = admin.list_projects(
            session,
            ctx,
            name=name,
            domain_id=_ref(domain_id),
            enabled=_flag(enabled),
            parent_id=_ref(parent_id),
            tags=tags,
            is_domain=_flag(is_domain),
        )
    return _listed(request, "projects", views.project, projects)


@router.post("/v3/projects", status_code=201)
def create_project(request: Request, body: ProjectCreateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        project = admin.create_project(session, ctx, body.project)
    return {"project": views.project(project, _base(request))}


@router.get("/v3/projects/{project_id}")
def show_project(request: Request, project_id: str, ctx: Ctx, rt: Rt) -> Body:
    asked = frozenset(flag for flag in _TREE_FLAGS if _present(request, flag))
    with rt.db.read() as session:
        tree = admin.get_project_tree(session, ctx, project_id, asked)
    return {"project": views.project_tree(tree, _base(request))}


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


# --- project tags ---------------------------------------------------------------------------

_TAGS = "/v3/projects/{project_id}/tags"


class TagsBody(_Envelope):
    tags: list[Any]


@router.get(_TAGS)
def list_project_tags(request: Request, project_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        tags = admin.list_project_tags(session, ctx, project_id)
    return views.project_tags(tags, _base(request), project_id)


@router.put(_TAGS)
def replace_project_tags(request: Request, project_id: str, body: TagsBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        tags = admin.replace_project_tags(session, ctx, project_id, body.tags)
    return views.project_tags(tags, _base(request), project_id)


@router.delete(_TAGS, status_code=204)
def clear_project_tags(project_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        admin.clear_project_tags(session, ctx, project_id)
    return _no_content()


def check_project_tag(project_id: str, tag: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.read() as session:
        admin.check_project_tag(session, ctx, project_id, tag)
    return _no_content()


router.get(_TAGS + "/{tag}", status_code=204, name="show_project_tag")(check_project_tag)
router.head(_TAGS + "/{tag}", status_code=204, name="check_project_tag")(check_project_tag)


@router.put(_TAGS + "/{tag}", status_code=201)
def add_project_tag(request: Request, project_id: str, tag: str, ctx: Ctx, rt: Rt) -> Response:
    """201 with no body and the tag's Location, as Keystone (the API working group's tags)."""
    with rt.db.transaction() as session:
        admin.add_project_tag(session, ctx, project_id, tag)
    return Response(status_code=201, headers={"Location": str(request.url)})


@router.delete(_TAGS + "/{tag}", status_code=204)
def remove_project_tag(project_id: str, tag: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        admin.remove_project_tag(session, ctx, project_id, tag)
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
    return _listed(request, "users", views.user, users)


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
    return _listed(request, "projects", views.project, projects)


# --- application credentials ----------------------------------------------------------------


class AppCredCreateBody(_Envelope):
    application_credential: app_creds.AppCredCreate


_APP_CREDS = "/v3/users/{user_id}/application_credentials"


@router.post(_APP_CREDS, status_code=201)
def create_app_cred(request: Request, user_id: str, body: AppCredCreateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        cred = app_creds.create(session, ctx, user_id, body.application_credential)
    return {"application_credential": views.app_cred(cred, _base(request))}


@router.get(_APP_CREDS)
def list_app_creds(request: Request, user_id: str, ctx: Ctx, rt: Rt, name: str | None = None) -> Body:
    with rt.db.read() as session:
        creds = app_creds.list_for_user(session, ctx, user_id, name)
    return _listed(request, "application_credentials", views.app_cred, creds)


@router.get(_APP_CREDS + "/{cred_id}")
def show_app_cred(request: Request, user_id: str, cred_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        cred = app_creds.get(session, ctx, user_id, cred_id)
    return {"application_credential": views.app_cred(cred, _base(request))}


@router.delete(_APP_CREDS + "/{cred_id}", status_code=204)
def delete_app_cred(user_id: str, cred_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        app_creds.delete(session, ctx, user_id, cred_id)
    rt.tokens.refresh_soon()  # this worker sees the revocation at once
    return _no_content()


# --- roles ----------------------------------------------------------------------------------


@router.get("/v3/roles")
def list_roles(
    request: Request, ctx: Ctx, rt: Rt, name: str | None = None, domain_id: str | None = None
) -> Body:
    with rt.db.read() as session:
        roles = admin.list_roles(session, ctx, name=name, domain_id=_ref(domain_id))
    return _listed(request, "roles", views.role, roles)


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
    rt.tokens.refresh_soon()  # this worker sees the revocation at once
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
    rt.tokens.refresh_soon()  # this worker sees the revocation at once
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

# Where a grant stands: (target type, target id, actor type, actor id), as admin's functions take it.
_Where = tuple[str, str, str, str]


def _grant(rt: Runtime, ctx: RequestContext, where: _Where, role_id: str, inherited: bool) -> Response:
    with rt.db.transaction() as session:
        admin.grant_role(session, ctx, *where, role_id, inherited=inherited)
    return _no_content()


def _check_grant(rt: Runtime, ctx: RequestContext, where: _Where, role_id: str, inherited: bool) -> Response:
    with rt.db.read() as session:
        admin.check_role(session, ctx, *where, role_id, inherited=inherited)
    return _no_content()


def _revoke(rt: Runtime, ctx: RequestContext, where: _Where, role_id: str, inherited: bool) -> Response:
    with rt.db.transaction() as session:
        admin.revoke_role(session, ctx, *where, role_id, inherited=inherited)
    rt.tokens.refresh_soon()  # this worker sees the revocation at once
    return _no_content()


def _granted(request: Request, rt: Runtime, ctx: RequestContext, where: _Where, inherited: bool) -> Body:
    with rt.db.read() as session:
        roles = admin.roles_granted(session, ctx, *where, inherited=inherited)
    return _listed(request, "roles", views.role, roles)


def _add_grant_routes(
    one: str,
    every: str | None,
    name: str,
    grant: Callable[..., Response],
    check: Callable[..., Response],
    revoke: Callable[..., Response],
    listing: Callable[..., Body],
) -> None:
    """PUT/HEAD/GET/DELETE `one` (a grant of one role) and, unless `every` is None, GET `every`
    (the roles granted), under operation names `<verb>_<name>`."""
    router.put(one, status_code=204, name=f"grant_{name}")(grant)
    router.head(one, status_code=204, name=f"check_{name}")(check)
    router.get(one, status_code=204, name=f"show_{name}")(check)
    router.delete(one, status_code=204, name=f"revoke_{name}")(revoke)
    if every is not None:
        router.get(every, name=f"list_{name}")(listing)


def _grant_routes(target_type: str, actor_type: str, inherited: bool) -> None:
    """The grant routes of one kind of target (project, domain) and of actor (user, group):
    .../{target_type}s/{t}/{actor_type}s/{a}/roles[/{r}], or with `inherited` OS-INHERIT's
    /v3/OS-INHERIT/.../roles/{r}/inherited_to_projects (and for domains GET
    .../roles/inherited_to_projects). Every one parses the path and calls one domain function."""
    base = f"/{target_type}s/{{target_id}}/{actor_type}s/{{actor_id}}/roles"
    name = f"{target_type}_{actor_type}"
    if inherited:
        base, name, suffix = "/v3/OS-INHERIT" + base, "inherited_" + name, "/inherited_to_projects"
    else:
        base, suffix = "/v3" + base, ""

    def grant(target_id: str, actor_id: str, role_id: str, ctx: Ctx, rt: Rt) -> Response:
        return _grant(rt, ctx, (target_type, target_id, actor_type, actor_id), role_id, inherited)

    def check(target_id: str, actor_id: str, role_id: str, ctx: Ctx, rt: Rt) -> Response:
        return _check_grant(rt, ctx, (target_type, target_id, actor_type, actor_id), role_id, inherited)

    def revoke(target_id: str, actor_id: str, role_id: str, ctx: Ctx, rt: Rt) -> Response:
        return _revoke(rt, ctx, (target_type, target_id, actor_type, actor_id), role_id, inherited)

    def listing(request: Request, target_id: str, actor_id: str, ctx: Ctx, rt: Rt) -> Body:
        return _granted(request, rt, ctx, (target_type, target_id, actor_type, actor_id), inherited)

    listed = not inherited or target_type == grants.DOMAIN
    every = base + suffix if listed else None
    _add_grant_routes(base + "/{role_id}" + suffix, every, name, grant, check, revoke, listing)


def _system_grant_routes(actor_type: str) -> None:
    """The same for the system: /v3/system/{users,groups}/{actor_id}/roles[/{role_id}]."""
    base = f"/v3/system/{actor_type}s/{{actor_id}}/roles"
    system, all_ = grants.SYSTEM, grants.SYSTEM_ALL

    def grant(actor_id: str, role_id: str, ctx: Ctx, rt: Rt) -> Response:
        return _grant(rt, ctx, (system, all_, actor_type, actor_id), role_id, False)

    def check(actor_id: str, role_id: str, ctx: Ctx, rt: Rt) -> Response:
        return _check_grant(rt, ctx, (system, all_, actor_type, actor_id), role_id, False)

    def revoke(actor_id: str, role_id: str, ctx: Ctx, rt: Rt) -> Response:
        return _revoke(rt, ctx, (system, all_, actor_type, actor_id), role_id, False)

    def listing(request: Request, actor_id: str, ctx: Ctx, rt: Rt) -> Body:
        return _granted(request, rt, ctx, (system, all_, actor_type, actor_id), False)

    _add_grant_routes(base + "/{role_id}", base, f"system_{actor_type}", grant, check, revoke, listing)


for _target in (grants.PROJECT, grants.DOMAIN):
    for _actor in (grants.USER, grants.GROUP):
        _grant_routes(_target, _actor, inherited=False)
        _grant_routes(_target, _actor, inherited=True)
for _actor in (grants.USER, grants.GROUP):
    _system_grant_routes(_actor)


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
        group_id=_ref(group_id),
        project_id=_ref(project_id),
        domain_id=_ref(domain_id),
        system=_ref(system) is not None,
        role_id=_ref(role_id),
        effective=effective is not None and _flag(effective) is not False,
    )
    with rt.db.read() as session:
        listing = admin.list_assignments(session, ctx, flt)
    names = listing.domain_names if _flag(include_names) else None
    return views.collection(
        "role_assignments", (views.assignment(a, _base(request), names) for a in listing.rows), _url(request)
    )


# --- unified limits -------------------------------------------------------------------------


class RegisteredLimitsBody(_Envelope):
    registered_limits: list[limits.RegisteredLimitCreate]


class RegisteredLimitUpdateBody(_Envelope):
    registered_limit: limits.RegisteredLimitUpdate


class LimitsBody(_Envelope):
    limits: list[limits.LimitCreate]


class LimitUpdateBody(_Envelope):
    limit: limits.LimitUpdate


def _limit_catalog(request: Request, rt: Runtime) -> limits.Catalog:
    return limits.Catalog(frozenset(s["id"] for s in _catalog(request, rt)), rt.settings.region)


@router.get("/v3/limits/model")
def limits_model(ctx: Ctx) -> Body:
    return {
        "model": {
            "name": "flat",
            "description": (
                "Limit enforcement and validation does not take project hierarchy into consideration."
            ),
        }
    }


@router.post("/v3/registered_limits", status_code=201)
def create_registered_limits(request: Request, body: RegisteredLimitsBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        made = limits.create_registered(session, ctx, _limit_catalog(request, rt), body.registered_limits)
    return {"registered_limits": [views.registered_limit(r, _base(request)) for r in made]}


@router.get("/v3/registered_limits")
def list_registered_limits(
    request: Request,
    ctx: Ctx,
    rt: Rt,
    service_id: str | None = None,
    region_id: str | None = None,
    resource_name: str | None = None,
) -> Body:
    with rt.db.read() as session:
        found = limits.list_registered(
            session, ctx, service_id=_ref(service_id), region_id=_ref(region_id), resource_name=resource_name
        )
    return _listed(request, "registered_limits", views.registered_limit, found)


@router.get("/v3/registered_limits/{limit_id}")
def show_registered_limit(request: Request, limit_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        limit = limits.get_registered(session, ctx, limit_id)
    return {"registered_limit": views.registered_limit(limit, _base(request))}


@router.patch("/v3/registered_limits/{limit_id}")
def update_registered_limit(
    request: Request, limit_id: str, body: RegisteredLimitUpdateBody, ctx: Ctx, rt: Rt
) -> Body:
    with rt.db.transaction() as session:
        limit = limits.update_registered(session, ctx, limit_id, body.registered_limit)
    return {"registered_limit": views.registered_limit(limit, _base(request))}


@router.delete("/v3/registered_limits/{limit_id}", status_code=204)
def delete_registered_limit(limit_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        limits.delete_registered(session, ctx, limit_id)
    return _no_content()


@router.post("/v3/limits", status_code=201)
def create_limits(request: Request, body: LimitsBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        made = limits.create_limits(session, ctx, _limit_catalog(request, rt), body.limits)
    return {"limits": [views.project_limit(r, _base(request)) for r in made]}


@router.get("/v3/limits")
def list_limits(
    request: Request,
    ctx: Ctx,
    rt: Rt,
    project_id: str | None = None,
    service_id: str | None = None,
    resource_name: str | None = None,
) -> Body:
    with rt.db.read() as session:
        found = limits.list_limits(
            session,
            ctx,
            project_id=_ref(project_id),
            service_id=_ref(service_id),
            resource_name=resource_name,
        )
    return _listed(request, "limits", views.project_limit, found)


@router.get("/v3/limits/{limit_id}")
def show_limit(request: Request, limit_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        limit = limits.get_limit(session, ctx, limit_id)
    return {"limit": views.project_limit(limit, _base(request))}


@router.patch("/v3/limits/{limit_id}")
def update_limit(request: Request, limit_id: str, body: LimitUpdateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        limit = limits.update_limit(session, ctx, limit_id, body.limit)
    return {"limit": views.project_limit(limit, _base(request))}


@router.delete("/v3/limits/{limit_id}", status_code=204)
def delete_limit(limit_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        limits.delete_limit(session, ctx, limit_id)
    return _no_content()


# --- catalog: regions, services, endpoints ------------------------------------------------


class RegionCreateBody(_Envelope):
    region: catalog.RegionCreate = catalog.RegionCreate()


class RegionUpdateBody(_Envelope):
    region: catalog.RegionUpdate


class ServiceCreateBody(_Envelope):
    service: catalog.ServiceCreate


class ServiceUpdateBody(_Envelope):
    service: catalog.ServiceUpdate


class EndpointCreateBody(_Envelope):
    endpoint: catalog.EndpointCreate


class EndpointUpdateBody(_Envelope):
    endpoint: catalog.EndpointUpdate


@router.get("/v3/regions")
def list_regions(request: Request, ctx: Ctx, rt: Rt, parent_region_id: str | None = None) -> Body:
    with rt.db.read() as session:
        found = catalog.list_regions(session, ctx, _own(request, rt), parent_region_id=_ref(parent_region_id))
    return _listed(request, "regions", views.region, found)


@router.post("/v3/regions", status_code=201)
def create_region(request: Request, body: RegionCreateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        region = catalog.create_region(session, ctx, _own(request, rt), body.region)
    return {"region": views.region(region, _base(request))}


@router.put("/v3/regions/{region_id}", status_code=201)
def create_region_with_id(request: Request, region_id: str, body: RegionCreateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        region = catalog.create_region(session, ctx, _own(request, rt), body.region, region_id)
    return {"region": views.region(region, _base(request))}


@router.get("/v3/regions/{region_id}")
def show_region(request: Request, region_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        region = catalog.get_region(session, ctx, _own(request, rt), region_id)
    return {"region": views.region(region, _base(request))}


@router.patch("/v3/regions/{region_id}")
def update_region(request: Request, region_id: str, body: RegionUpdateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        region = catalog.update_region(session, ctx, _own(request, rt), region_id, body.region)
    return {"region": views.region(region, _base(request))}


@router.delete("/v3/regions/{region_id}", status_code=204)
def delete_region(request: Request, region_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        catalog.delete_region(session, ctx, _own(request, rt), region_id)
    return _no_content()


@router.get("/v3/services")
def list_services(
    request: Request, ctx: Ctx, rt: Rt, type: str | None = None, name: str | None = None
) -> Body:
    with rt.db.read() as session:
        found = catalog.list_services(session, ctx, _own(request, rt), type=type, name=name)
    return _listed(request, "services", views.service, found)


@router.post("/v3/services", status_code=201)
def create_service(request: Request, body: ServiceCreateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        made = catalog.create_service(session, ctx, body.service)
    return {"service": views.service(made, _base(request))}


@router.get("/v3/services/{service_id}")
def show_service(request: Request, service_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        found = catalog.get_service(session, ctx, _own(request, rt), service_id)
    return {"service": views.service(found, _base(request))}


@router.patch("/v3/services/{service_id}")
def update_service(request: Request, service_id: str, body: ServiceUpdateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        updated = catalog.update_service(session, ctx, _own(request, rt), service_id, body.service)
    return {"service": views.service(updated, _base(request))}


@router.delete("/v3/services/{service_id}", status_code=204)
def delete_service(request: Request, service_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        catalog.delete_service(session, ctx, _own(request, rt), service_id)
    return _no_content()


@router.get("/v3/endpoints")
def list_endpoints(
    request: Request,
    ctx: Ctx,
    rt: Rt,
    service_id: str | None = None,
    interface: str | None = None,
    region_id: str | None = None,
) -> Body:
    with rt.db.read() as session:
        found = catalog.list_endpoints(
            session,
            ctx,
            _own(request, rt),
            service_id=_ref(service_id),
            interface=interface,
            region_id=_ref(region_id),
        )
    return _listed(request, "endpoints", views.endpoint, found)


@router.post("/v3/endpoints", status_code=201)
def create_endpoint(request: Request, body: EndpointCreateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        made = catalog.create_endpoint(session, ctx, _own(request, rt), body.endpoint)
    return {"endpoint": views.endpoint(made, _base(request))}


@router.get("/v3/endpoints/{endpoint_id}")
def show_endpoint(request: Request, endpoint_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        found = catalog.get_endpoint(session, ctx, _own(request, rt), endpoint_id)
    return {"endpoint": views.endpoint(found, _base(request))}


@router.patch("/v3/endpoints/{endpoint_id}")
def update_endpoint(request: Request, endpoint_id: str, body: EndpointUpdateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        updated = catalog.update_endpoint(session, ctx, _own(request, rt), endpoint_id, body.endpoint)
    return {"endpoint": views.endpoint(updated, _base(request))}


@router.delete("/v3/endpoints/{endpoint_id}", status_code=204)
def delete_endpoint(request: Request, endpoint_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        catalog.delete_endpoint(session, ctx, _own(request, rt), endpoint_id)
    return _no_content()


# --- credentials ----------------------------------------------------------------------------


class CredentialCreateBody(_Envelope):
    credential: credentials.CredentialCreate


class CredentialUpdateBody(_Envelope):
    credential: credentials.CredentialUpdate


def _box(rt: Runtime) -> Fernet:
    return Fernet(rt.settings.secret("credential_key", generate="fernet").encode())


@router.post("/v3/credentials", status_code=201)
def create_credential(request: Request, body: CredentialCreateBody, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.transaction() as session:
        made = credentials.create(session, ctx, _box(rt), body.credential)
    return {"credential": views.credential(made, _base(request))}


@router.get("/v3/credentials")
def list_credentials(
    request: Request, ctx: Ctx, rt: Rt, user_id: str | None = None, type: str | None = None
) -> Body:
    with rt.db.read() as session:
        found = credentials.list_credentials(session, ctx, _box(rt), user_id=_ref(user_id), type=type)
    return _listed(request, "credentials", views.credential, found)


@router.get("/v3/credentials/{credential_id}")
def show_credential(request: Request, credential_id: str, ctx: Ctx, rt: Rt) -> Body:
    with rt.db.read() as session:
        found = credentials.get(session, ctx, _box(rt), credential_id)
    return {"credential": views.credential(found, _base(request))}


@router.patch("/v3/credentials/{credential_id}")
def update_credential(
    request: Request, credential_id: str, body: CredentialUpdateBody, ctx: Ctx, rt: Rt
) -> Body:
    with rt.db.transaction() as session:
        updated = credentials.update(session, ctx, _box(rt), credential_id, body.credential)
    return {"credential": views.credential(updated, _base(request))}


@router.delete("/v3/credentials/{credential_id}", status_code=204)
def delete_credential(credential_id: str, ctx: Ctx, rt: Rt) -> Response:
    with rt.db.transaction() as session:
        credentials.delete(session, ctx, credential_id)
    return _no_content()
