"""Keystone v3 response bodies for the admin API. `base` is the API root (request.base_url);
every entity carries `links.self`, every collection `links: {self, next, previous}`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kumo.identity import grants
from kumo.identity.admin import Assignment, Inference, ProjectTree, is_immutable
from kumo.identity.app_creds import AppCred
from kumo.identity.catalog import Endpoint, Region, Service
from kumo.identity.credentials import Plain
from kumo.identity.models import Domain, Group, Project, ProjectLimit, RegisteredLimit, Role, User


def _self(base: str, path: str) -> dict[str, Any]:
    return {"self": f"{base.rstrip('/')}/identity/v3/{path}"}


def collection(key: str, items: Iterable[dict[str, Any]], url: str) -> dict[str, Any]:
    return {key: list(items), "links": {"self": url, "next": None, "previous": None}}


def domain(d: Domain, base: str) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "enabled": d.enabled,
        "tags": [],
        "options": {},
        "links": _self(base, f"domains/{d.id}"),
    }


def project(p: Project | Domain, base: str) -> dict[str, Any]:
    if isinstance(p, Domain):  # a domain, as the project acting as it (Keystone's is_domain)
        return {
            "id": p.id,
            "name": p.name,
            "domain_id": None,
            "description": p.description,
            "enabled": p.enabled,
            "parent_id": None,
            "is_domain": True,
            "tags": [],
            "options": {},
            "links": _self(base, f"projects/{p.id}"),
        }
    # the extra attributes first: Keystone's own fields win over an extra of the same name
    return {
        **(p.extra or {}),
        "id": p.id,
        "name": p.name,
        "domain_id": p.domain_id,
        "description": p.description,
        "enabled": p.enabled,
        "parent_id": p.parent_id or p.domain_id,
        "is_domain": False,
        "tags": list(p.tags or []),
        "options": {},
        "links": _self(base, f"projects/{p.id}"),
    }


def project_tree(t: ProjectTree, base: str) -> dict[str, Any]:
    """A project with the hierarchy Keystone's query parameters asked for."""
    body = project(t.project, base)
    if "parents_as_list" in t.shown:
        body["parents"] = [{"project": project(p, base)} for p in t.parents or []]
    elif "parents_as_ids" in t.shown:
        body["parents"] = t.parents_ids
    if "subtree_as_list" in t.shown:
        body["subtree"] = [{"project": project(p, base)} for p in t.subtree or []]
    elif "subtree_as_ids" in t.shown:
        body["subtree"] = t.subtree_ids
    return body


def project_tags(tags: list[str], base: str, project_id: str) -> dict[str, Any]:
    return {"tags": tags, "links": _self(base, f"projects/{project_id}/tags")}


def user(u: User, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        **(u.extra or {}),
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "description": u.description,
        "password_expires_at": None,
        "options": {},
        "links": _self(base, f"users/{u.id}"),
    }
    # Keystone only shows these when set.
    if u.default_project_id:
        body["default_project_id"] = u.default_project_id
    if u.email:
        body["email"] = u.email
    return body


def role(r: Role, base: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "domain_id": r.domain_id or None,
        "description": r.description,
        "options": {"immutable": True} if is_immutable(r) else {},
        "links": _self(base, f"roles/{r.id}"),
    }


def assignment(a: Assignment, base: str, domain_names: dict[str, str] | None = None) -> dict[str, Any]:
    """A role assignment; with `domain_names`, Keystone's include_names shape."""
    actor_key = "user" if a.actor.type == grants.USER else "group"
    actor_ref: dict[str, Any] = {"id": a.actor.id}
    role_ref: dict[str, Any] = {"id": a.role.id}
    target = a.target.entity
    if a.target.type == grants.SYSTEM:
        scope: dict[str, Any] = {"system": {"all": True}}
    else:
        scope = {a.target.type: {"id": a.target.id}}
    if domain_names is not None:

        def owner(domain_id: str) -> dict[str, str]:
            return {"id": domain_id, "name": domain_names.get(domain_id, domain_id)}

        actor_ref.update(name=a.actor.entity.name, domain=owner(a.actor.entity.domain_id))
        role_ref["name"] = a.role.name
        if isinstance(target, Project):
            scope["project"].update(name=target.name, domain=owner(target.domain_id))
        elif target is not None:
            scope["domain"]["name"] = target.name
    assigned = a.prior_role or a.role
    grantee = ("groups", a.via_group.id) if a.via_group else (f"{actor_key}s", a.actor.id)
    if a.inherited:
        scope["OS-INHERIT:inherited_to"] = "projects"
    if a.target.type == grants.SYSTEM:
        path = f"system/{grantee[0]}/{grantee[1]}/roles/{assigned.id}"
    elif a.inherited or a.from_domain is not None or a.from_project is not None:
        if a.from_domain is not None:
            on = f"domains/{a.from_domain}"
        elif a.from_project is not None:
            on = f"projects/{a.from_project}"
        else:
            on = f"{a.target.type}s/{a.target.id}"
        path = f"OS-INHERIT/{on}/{grantee[0]}/{grantee[1]}/roles/{assigned.id}/inherited_to_projects"
    else:
        path = f"{a.target.type}s/{a.target.id}/{grantee[0]}/{grantee[1]}/roles/{assigned.id}"
    links = {"assignment": _self(base, path)["self"]}
    if a.via_group is not None:
        links["membership"] = _self(base, f"groups/{a.via_group.id}/users/{a.actor.id}")["self"]
    if a.prior_role is not None:
        links["prior_role"] = _self(base, f"roles/{a.prior_role.id}")["self"]
    return {"role": role_ref, "scope": scope, actor_key: actor_ref, "links": links}


def group(g: Group, base: str) -> dict[str, Any]:
    return {
        "id": g.id,
        "name": g.name,
        "domain_id": g.domain_id,
        "description": g.description,
        "links": _self(base, f"groups/{g.id}"),
    }


def role_ref(r: Role, base: str) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "links": _self(base, f"roles/{r.id}")}


def inference(i: Inference, base: str, *, single: bool = False) -> dict[str, Any]:
    """A role inference: one implied role (`single`, the rule's own URL) or the list of them."""
    implies = [role_ref(r, base) for r in i.implies]
    return {"prior_role": role_ref(i.prior, base), "implies": implies[0] if single else implies}


def service(s: Service, base: str) -> dict[str, Any]:
    return {
        "id": s.id,
        "type": s.type,
        "name": s.name,
        "description": s.description,
        "enabled": s.enabled,
        "links": _self(base, f"services/{s.id}"),
    }


def endpoint(e: Endpoint, base: str) -> dict[str, Any]:
    return {
        "id": e.id,
        "service_id": e.service_id,
        "interface": e.interface,
        "region": e.region_id,
        "region_id": e.region_id,
        "url": e.url,
        "enabled": e.enabled,
        "links": _self(base, f"endpoints/{e.id}"),
    }


def region(r: Region, base: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "description": r.description,
        "parent_region_id": r.parent_region_id,
        "links": _self(base, f"regions/{r.id}"),
    }


def app_cred(a: AppCred, base: str) -> dict[str, Any]:
    c = a.cred
    body: dict[str, Any] = {
        "id": c.id,
        "name": c.name,
        "description": c.description or None,
        "user_id": c.user_id,
        "project_id": c.project_id,
        "expires_at": c.expires_at.strftime("%Y-%m-%dT%H:%M:%S.%f") if c.expires_at else None,
        "unrestricted": c.unrestricted,
        "roles": [{"id": r.id, "name": r.name, "domain_id": r.domain_id or None} for r in a.roles],
        "access_rules": [],
        "system": None,
        "links": _self(base, f"users/{c.user_id}/application_credentials/{c.id}"),
    }
    if a.secret is not None:
        body["secret"] = a.secret
    return body


def registered_limit(r: RegisteredLimit, base: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "service_id": r.service_id,
        "region_id": r.region_id,
        "resource_name": r.resource_name,
        "default_limit": r.default_limit,
        "description": r.description or None,
        "links": _self(base, f"registered_limits/{r.id}"),
    }


def project_limit(r: ProjectLimit, base: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "project_id": r.project_id,
        "domain_id": None,
        "service_id": r.service_id,
        "region_id": r.region_id,
        "resource_name": r.resource_name,
        "resource_limit": r.resource_limit,
        "description": r.description or None,
        "links": _self(base, f"limits/{r.id}"),
    }


def credential(c: Plain, base: str) -> dict[str, Any]:
    return {
        "id": c.id,
        "user_id": c.user_id,
        "project_id": c.project_id,
        "type": c.type,
        "blob": c.blob,
        "links": _self(base, f"credentials/{c.id}"),
    }
