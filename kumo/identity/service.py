"""Identity domain: authenticate, issue/validate/revoke tokens, build the catalog."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.db import Database
from kumo.errors import BadRequest, Forbidden, NotFound, Unauthorized
from kumo.identity import inference, revocation
from kumo.identity.lockout import Attempt, Lockout, check_password
from kumo.identity.models import Project, RevokedToken, RoleAssignment, User
from kumo.identity.tokens import TokenData, TokenProvider

DEFAULT_DOMAIN = {"id": "default", "name": "Default"}
SERVICES = (
    # (type, name, path under the API root)
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/networking"),
    ("placement", "placement", "/placement"),
    ("baremetal", "ironic", "/baremetal"),
)


def _is_default_domain(ref: dict[str, Any] | None) -> bool:
    return not ref or (ref.get("id") in (None, "default") and ref.get("name") in (None, "Default"))


def _check_domain(ref: dict[str, Any] | None) -> None:
    if not _is_default_domain(ref):
        raise Unauthorized("The request you have made requires authentication.")


def _find_user(session: Session, ref: dict[str, Any]) -> User | None:
    """The user a login names; None when there is none (a name in another domain included)."""
    if "id" in ref:
        return session.get(User, ref["id"])
    if "name" in ref:
        if not _is_default_domain(ref.get("domain")):
            return None
        return session.scalar(select(User).where(User.name == ref["name"], User.domain_id == "default"))
    raise BadRequest("Expecting to find id or name in user.")


def _login_subject(tokens: TokenProvider, user: User | None, ref: dict[str, Any]) -> str:
    """Whose failed logins a password login counts: the user's id. For a user that does not
    exist, what a real one would show: the id the login gave, or for a name an id-shaped
    stand-in that only this cloud can compute."""
    if user is not None:
        return user.id
    if "id" in ref:
        return str(ref["id"])
    domain = "default" if _is_default_domain(ref.get("domain")) else repr(ref.get("domain"))
    return tokens.pseudonym(f"{domain}\0{ref['name']}")


def _find_project(session: Session, ref: dict[str, Any]) -> Project:
    project = None
    if "id" in ref:
        project = session.get(Project, ref["id"])
    elif "name" in ref:
        _check_domain(ref.get("domain"))
        project = session.scalar(select(Project).where(Project.name == ref["name"]))
    else:
        raise BadRequest("Expecting to find id or name in project.")
    if project is None or not project.enabled:
        raise Unauthorized(f"The request you have made requires authentication. (project {ref})")
    return project


def roles_on_project(session: Session, user_id: str, project_id: str) -> list[tuple[str, str]]:
    """The user's effective roles on the project: assigned, and implied by those."""
    assigned = session.scalars(
        select(RoleAssignment.role_id).where(
            RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id
        )
    )
    return inference.effective(session, assigned)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    data: TokenData


def _password_user(auth: Any) -> dict[str, Any] | None:
    """The user reference of a well-formed password login (`authenticate` refuses the others)."""
    identity = auth.get("identity") if isinstance(auth, dict) else None
    if not isinstance(identity, dict) or not isinstance(identity.get("methods"), list):
        return None
    if "password" not in identity["methods"] or not isinstance(identity.get("password"), dict):
        return None
    ref = identity["password"].get("user")
    return ref if isinstance(ref, dict) and "password" in ref else None


def login(db: Database, tokens: TokenProvider, auth: dict[str, Any], lockout: Lockout) -> IssuedToken:
    """Keystone's POST /v3/auth/tokens. A password login is first counted towards the lockout
    (refused there while locked), whether or not the user exists."""
    ref = _password_user(auth)
    subject_of = None if ref is None else lambda s: _login_subject(tokens, _find_user(s, ref), ref)
    with lockout.attempt(db, subject_of) as attempt, db.transaction() as session:
        return authenticate(session, tokens, auth, attempt)


def authenticate(
    session: Session, tokens: TokenProvider, auth: dict[str, Any], attempt: Attempt
) -> IssuedToken:
    """Keystone's POST /v3/auth/tokens: password or token method, optionally project-scoped.
    A refused password costs one password check whether or not the user exists. A password
    login was counted by the lockout before (`login`)."""
    if not isinstance(auth, dict):
        raise BadRequest("Expecting to find auth in request body.")
    identity = auth.get("identity")
    if not isinstance(identity, dict) or not isinstance(identity.get("methods"), list):
        raise BadRequest("Expecting to find identity in auth.")
    methods = identity["methods"]
    expires_at: dt.datetime | None = None
    issued_at: dt.datetime | None = None
    audit_id = None
    token_methods: tuple[str, ...] = ("password",)
    user: User | None
    if "password" in methods:
        user_ref = (identity.get("password") or {}).get("user")
        if not isinstance(user_ref, dict) or "password" not in user_ref:
            raise BadRequest("Expecting to find user and password in password.")
        found = _find_user(session, user_ref)
        user = check_password(attempt, found, str(user_ref["password"]))
    elif "token" in methods:
        old = tokens.verify(str((identity.get("token") or {}).get("id", "")))
        # This worker's revocations may be a refresh interval old: ask the database itself.
        if revocation.revoked_now(session, old.audit_id, old.user_id, old.project_id, old.issued_at):
            raise Unauthorized("The token has been revoked.")
        user = session.get(User, old.user_id)
        if user is None or not user.enabled:
            raise Unauthorized("The request you have made requires authentication.")
        # As Keystone: a rescoped token never outlives its parent, and keeps its issue time, so
        # that a revocation of the parent's (by user, by project) revokes it too.
        expires_at, issued_at = old.expires_at, old.issued_at
        # As Keystone: the new token lists how its user first authenticated, and "token".
        token_methods = tuple(dict.fromkeys((*old.methods, "token")))
    else:
        raise Unauthorized(f"Unsupported authentication methods {methods}.")

    scope = auth.get("scope")
    project: Project | None = None
    roles: list[tuple[str, str]] = []
    if isinstance(scope, dict) and "project" in scope:
        project = _find_project(session, scope["project"])
        roles = roles_on_project(session, user.id, project.id)
        if not roles:
            raise Unauthorized(f"User {user.id} has no access to project {project.id}")
    elif scope is None and user.default_project_id:
        project = session.get(Project, user.default_project_id)
        roles = roles_on_project(session, user.id, project.id) if project else []
        if not roles:
            project = None
    elif scope not in (None, "unscoped") and not (isinstance(scope, dict) and "project" in scope):
        raise Forbidden("Only project scope is supported.")
    token, data = tokens.issue(
        user_id=user.id,
        user_name=user.name,
        project_id=project.id if project else None,
        project_name=project.name if project else None,
        roles=roles,
        expires_at=expires_at,
        audit_id=audit_id,
        issued_at=issued_at,
        methods=token_methods,
    )
    return IssuedToken(token, data)


def revoke(session: Session, tokens: TokenProvider, data: TokenData) -> None:
    if session.get(RevokedToken, data.audit_id) is None:
        session.add(RevokedToken(audit_id=data.audit_id, expires_at=data.expires_at))
    tokens.mark_revoked(data.audit_id)


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def catalog(base_url: str, region: str) -> list[dict[str, Any]]:
    base = base_url.rstrip("/")
    entries = []
    for stype, name, path in SERVICES:
        service_id = uuid.uuid5(uuid.NAMESPACE_URL, f"kumo:{stype}").hex
        endpoints = [
            {
                "id": uuid.uuid5(uuid.NAMESPACE_URL, f"kumo:{stype}:{iface}").hex,
                "interface": iface,
                "region": region,
                "region_id": region,
                "url": base + path,
            }
            for iface in ("public", "internal", "admin")
        ]
        entries.append({"id": service_id, "type": stype, "name": name, "endpoints": endpoints})
    return entries


def token_body(data: TokenData, base_url: str, region: str, with_catalog: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "methods": list(data.methods),
        "user": {
            "id": data.user_id,
            "name": data.user_name,
            "domain": DEFAULT_DOMAIN,
            "password_expires_at": None,
        },
        "audit_ids": [data.audit_id],
        "expires_at": _iso(data.expires_at),
        "issued_at": _iso(data.issued_at),
    }
    if data.project_id:
        body["project"] = {"id": data.project_id, "name": data.project_name, "domain": DEFAULT_DOMAIN}
        body["is_domain"] = False
        body["roles"] = [
            {"id": rid, "name": name} for rid, name in zip(data.role_ids, data.roles, strict=True)
        ]
        if with_catalog:
            body["catalog"] = catalog(base_url, region)
    return {"token": body}


def projects_of_user(session: Session, user_id: str) -> list[Project]:
    return list(
        session.scalars(
            select(Project)
            .join(RoleAssignment, RoleAssignment.project_id == Project.id)
            .where(RoleAssignment.user_id == user_id)
            .distinct()
            .order_by(Project.name)
        )
    )


def require_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"Could not find user: {user_id}.")
    return user
