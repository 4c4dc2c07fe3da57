"""Keystone v3 response bodies for the admin API. `base` is the API root (request.base_url);
every entity carries `links.self`, every collection `links: {self, next, previous}`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kumo.identity.admin import (
    DEFAULT_DOMAIN,
    Assignment,
    CatalogEndpoint,
    CatalogService,
    Domain,
    Inference,
    is_immutable,
)
from kumo.identity.models import Project, Role, User


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


def project(p: Project, base: str) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "domain_id": p.domain_id,
        "description": p.description,
        "enabled": p.enabled,
        "parent_id": p.domain_id,
        "is_domain": False,
        "tags": [],
        "options": {},
        "links": _self(base, f"projects/{p.id}"),
    }


def user(u: User, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {
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
        "domain_id": None,
        "description": r.description,
        "options": {"immutable": True} if is_immutable(r) else {},
        "links": _self(base, f"roles/{r.id}"),
    }


def assignment(a: Assignment, base: str, include_names: bool = False) -> dict[str, Any]:
    user_ref: dict[str, Any] = {"id": a.user.id}
    project_ref: dict[str, Any] = {"id": a.project.id}
    role_ref: dict[str, Any] = {"id": a.role.id}
    if include_names:
        owner = {"id": DEFAULT_DOMAIN.id, "name": DEFAULT_DOMAIN.name}
        user_ref.update(name=a.user.name, domain=owner)
        project_ref.update(name=a.project.name, domain=owner)
        role_ref["name"] = a.role.name
    assigned = a.prior_role or a.role
    path = f"projects/{a.project.id}/users/{a.user.id}/roles/{assigned.id}"
    links = {"assignment": _self(base, path)["self"]}
    if a.prior_role is not None:
        links["prior_role"] = _self(base, f"roles/{a.prior_role.id}")["self"]
    return {"role": role_ref, "scope": {"project": project_ref}, "user": user_ref, "links": links}


def role_ref(r: Role, base: str) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "links": _self(base, f"roles/{r.id}")}


def inference(i: Inference, base: str, *, single: bool = False) -> dict[str, Any]:
    """A role inference: one implied role (`single`, the rule's own URL) or the list of them."""
    implies = [role_ref(r, base) for r in i.implies]
    return {"prior_role": role_ref(i.prior, base), "implies": implies[0] if single else implies}


def service(s: CatalogService, base: str) -> dict[str, Any]:
    return {
        "id": s.id,
        "type": s.type,
        "name": s.name,
        "description": "",
        "enabled": True,
        "links": _self(base, f"services/{s.id}"),
    }


def endpoint(e: CatalogEndpoint, base: str) -> dict[str, Any]:
    return {
        "id": e.id,
        "service_id": e.service_id,
        "interface": e.interface,
        "region": e.region,
        "region_id": e.region,
        "url": e.url,
        "enabled": True,
        "links": _self(base, f"endpoints/{e.id}"),
    }


def region(region_id: str, base: str) -> dict[str, Any]:
    return {
        "id": region_id,
        "description": "",
        "parent_region_id": None,
        "links": _self(base, f"regions/{region_id}"),
    }
