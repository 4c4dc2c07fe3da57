"""Identity domain: authenticate, issue/validate/revoke tokens, build the catalog."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.db import Database, utcnow
from kumo.errors import BadRequest, Forbidden, NotFound, Unauthorized
from kumo.identity import app_creds, grants, revocation
from kumo.identity.lockout import Attempt, Lockout, check_password
from kumo.identity.models import Domain, Project, RevokedToken, User
from kumo.tokens import TokenData, TokenProvider

DEFAULT_DOMAIN = {"id": "default", "name": "Default"}
SERVICES = (
    # (type, name, path under the API root)
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/networking"),
    ("placement", "placement", "/placement"),
    ("baremetal", "ironic", "/baremetal"),
    ("infra-optim", "watcher", "/infra-optim"),
)


def _domain_id(session: Session, ref: dict[str, Any] | None) -> str | None:
    """The id of the domain a login names (absent: `default`); None when there is none."""
    if not ref:
        return DEFAULT_DOMAIN["id"]
    if "id" in ref:
        domain = session.get(Domain, ref["id"])
        if domain is None or ("name" in ref and ref["name"] != domain.name):
            return None
        return domain.id
    return session.scalar(select(Domain.id).where(Domain.name == ref.get("name")))


def _find_user(session: Session, ref: dict[str, Any]) -> User | None:
    """The user a login names; None when there is none (a name in another domain included)."""
    if "id" in ref:
        return session.get(User, ref["id"])
    if "name" in ref:
        domain_id = _domain_id(session, ref.get("domain"))
        if domain_id is None:
            return None
        return session.scalar(select(User).where(User.name == ref["name"], User.domain_id == domain_id))
    raise BadRequest("Expecting to find id or name in user.")


def _login_subject(session: Session, tokens: TokenProvider, user: User | None, ref: dict[str, Any]) -> str:
    """Whose failed logins a password login counts: the user's id. For a user that does not
    exist, what a real one would show: the id the login gave, or for a name an id-shaped
    stand-in that only this cloud can compute."""
    if user is not None:
        return user.id
    if "id" in ref:
        return str(ref["id"])
    # The domain's id whichever way the login names it (so that every form counts alike, as
    # for a real user); a domain that does not exist, by what the login gave.
    domain = ref.get("domain")
    key = _domain_id(session, domain) or repr(sorted(domain.items()) if isinstance(domain, dict) else domain)
    return tokens.pseudonym(f"{key}\0{ref['name']}")


def _refused(what: str) -> Unauthorized:
    return Unauthorized(f"The request you have made requires authentication. ({what})")


def _enabled_domain(session: Session, domain_id: str) -> Domain:
    domain = session.get(Domain, domain_id)
    if domain is None or not domain.enabled:
        raise _refused(f"domain {domain_id} is disabled or does not exist")
    return domain


def _find_project(session: Session, ref: dict[str, Any]) -> Project:
    project = None
    if "id" in ref:
        project = session.get(Project, ref["id"])
    elif "name" in ref:
        domain_id = _domain_id(session, ref.get("domain"))
        project = session.scalar(
            select(Project).where(Project.name == ref["name"], Project.domain_id == domain_id)
        )
    else:
        raise BadRequest("Expecting to find id or name in project.")
    if project is None or not project.enabled:
        raise _refused(f"project {ref}")
    _enabled_domain(session, project.domain_id)
    return project


def _find_domain(session: Session, ref: dict[str, Any]) -> Domain:
    domain_id = _domain_id(session, ref)
    if domain_id is None:
        raise _refused(f"domain {ref}")
    return _enabled_domain(session, domain_id)


def roles_on_project(session: Session, user_id: str, project_id: str) -> list[tuple[str, str]]:
    """The user's effective roles on the project: assigned, through groups, and implied."""
    return grants.effective_roles(session, user_id, grants.PROJECT, project_id)


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
    subject_of = None if ref is None else lambda s: _login_subject(s, tokens, _find_user(s, ref), ref)
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
        app_cred = old.app_cred[0] if old.app_cred else None
        if revocation.revoked_now(session, old.audit_id, old.user_id, old.scope_id, old.issued_at, app_cred):
            raise Unauthorized("The token has been revoked.")
        user = session.get(User, old.user_id)
        if user is None or not user.enabled:
            raise Unauthorized("The request you have made requires authentication.")
        # As Keystone: a rescoped token never outlives its parent, and keeps its issue time, so
        # that a revocation of the parent's (by user, by project) revokes it too.
        expires_at, issued_at = old.expires_at, old.issued_at
        # As Keystone: the new token lists how its user first authenticated, and "token".
        token_methods = tuple(dict.fromkeys((*old.methods, "token")))
        if old.app_cred is not None:
            raise Forbidden("A token from an application credential cannot be rescoped.")
    elif "application_credential" in methods:
        return _app_cred_login(session, tokens, identity.get("application_credential"), auth.get("scope"))
    else:
        raise Unauthorized(f"Unsupported authentication methods {methods}.")

    user_domain = _enabled_domain(session, user.domain_id)
    target = _scope(session, user, auth.get("scope"))
    token, data = tokens.issue(
        user_id=user.id,
        user_name=user.name,
        project_id=target.project.id if target.project else None,
        project_name=target.project.name if target.project else None,
        roles=target.roles,
        expires_at=expires_at,
        audit_id=audit_id,
        issued_at=issued_at,
        methods=token_methods,
        user_domain=(user_domain.id, user_domain.name),
        project_domain=target.project_domain,
        domain=(target.domain.id, target.domain.name) if target.domain else None,
        system=target.system,
    )
    return IssuedToken(token, data)


def _app_cred_login(session: Session, tokens: TokenProvider, ref: Any, scope: Any) -> IssuedToken:
    """A token for an application credential: scoped to its project, with its roles."""
    if scope not in (None, "unscoped"):
        raise Unauthorized("Application credentials cannot request a scope.")
    login = app_creds.authenticate(session, ref, _find_user)
    user_domain = _enabled_domain(session, login.user.domain_id)
    cred = login.cred
    expires_at = None
    if cred.expires_at is not None:
        expires_at = min(cred.expires_at, utcnow() + dt.timedelta(seconds=tokens.ttl_seconds))
    token, data = tokens.issue(
        user_id=login.user.id,
        user_name=login.user.name,
        project_id=login.project.id,
        project_name=login.project.name,
        roles=login.roles,
        expires_at=expires_at,
        methods=("application_credential",),
        user_domain=(user_domain.id, user_domain.name),
        project_domain=(login.project_domain.id, login.project_domain.name),
        app_cred=(cred.id, cred.name, not cred.unrestricted),
    )
    return IssuedToken(token, data)


@dataclass(frozen=True)
class _Target:
    """What a token is scoped to (nothing, a project or a domain) and the roles it carries."""

    roles: list[tuple[str, str]]
    project: Project | None = None
    project_domain: tuple[str, str] | None = None
    domain: Domain | None = None
    system: bool = False


def _scope(session: Session, user: User, scope: Any) -> _Target:
    """Keystone's scoping: the project, domain or system asked for, where the user holds a role
    (401 otherwise); no scope: the user's default project if it holds one there, else none."""
    if isinstance(scope, dict) and "project" in scope:
        project = _find_project(session, scope["project"])
        roles = roles_on_project(session, user.id, project.id)
        if not roles:
            raise Unauthorized(f"User {user.id} has no access to project {project.id}")
        return _project_target(session, project, roles)
    if isinstance(scope, dict) and "domain" in scope:
        domain = _find_domain(session, scope["domain"])
        roles = grants.effective_roles(session, user.id, grants.DOMAIN, domain.id)
        if not roles:
            raise Unauthorized(f"User {user.id} has no access to domain {domain.id}")
        return _Target(roles, domain=domain)
    if isinstance(scope, dict) and "system" in scope:
        if scope["system"] != {"all": True}:
            raise BadRequest("Only the system scope {'all': true} exists.")
        roles = grants.effective_roles(session, user.id, grants.SYSTEM, grants.SYSTEM_ALL)
        if not roles:
            raise Unauthorized(f"User {user.id} has no access to the system.")
        return _Target(roles, system=True)
    if isinstance(scope, dict):
        raise Forbidden("Only project, domain and system scope are supported.")
    if scope is None and user.default_project_id:
        default = session.get(Project, user.default_project_id)
        roles = roles_on_project(session, user.id, default.id) if default else []
        home = session.get(Domain, default.domain_id) if default else None
        if default and default.enabled and roles and home and home.enabled:
            return _project_target(session, default, roles)
    return _Target([])


def _project_target(session: Session, project: Project, roles: list[tuple[str, str]]) -> _Target:
    domain = session.get(Domain, project.domain_id)
    name = domain.name if domain else project.domain_id
    return _Target(roles, project=project, project_domain=(project.domain_id, name))


def revoke(session: Session, tokens: TokenProvider, data: TokenData) -> None:
    if session.get(RevokedToken, data.audit_id) is None:
        session.add(RevokedToken(audit_id=data.audit_id, expires_at=data.expires_at))
    tokens.mark_revoked(data.audit_id)


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def catalog_service_id(service_type: str) -> str:
    """The id the catalog gives a service (stable: derived from its type)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"kumo:{service_type}").hex


def catalog(base_url: str, region: str) -> list[dict[str, Any]]:
    base = base_url.rstrip("/")
    entries = []
    for stype, name, path in SERVICES:
        service_id = catalog_service_id(stype)
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


def _domain_ref(pair: tuple[str, str] | None) -> dict[str, str]:
    domain_id, name = pair or (DEFAULT_DOMAIN["id"], DEFAULT_DOMAIN["name"])
    return {"id": domain_id, "name": name}


def token_body(data: TokenData, catalog_entries: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The token's body; a scoped token carries `catalog_entries` unless they are None."""
    body: dict[str, Any] = {
        "methods": list(data.methods),
        "user": {
            "id": data.user_id,
            "name": data.user_name,
            "domain": _domain_ref(data.user_domain),
            "password_expires_at": None,
        },
        "audit_ids": [data.audit_id],
        "expires_at": _iso(data.expires_at),
        "issued_at": _iso(data.issued_at),
    }
    scoped = True
    if data.project_id:
        body["project"] = {
            "id": data.project_id,
            "name": data.project_name,
            "domain": _domain_ref(data.project_domain),
        }
        body["is_domain"] = False
    elif data.domain:
        body["domain"] = _domain_ref(data.domain)
    elif data.system:
        body["system"] = {"all": True}
    else:
        scoped = False
    if scoped:
        body["roles"] = [
            {"id": rid, "name": name} for rid, name in zip(data.role_ids, data.roles, strict=True)
        ]
        if catalog_entries is not None:
            body["catalog"] = catalog_entries
    if data.app_cred:
        cred_id, cred_name, restricted = data.app_cred
        body["application_credential"] = {"id": cred_id, "name": cred_name, "restricted": restricted}
    return {"token": body}


def projects_of_user(session: Session, user_id: str) -> list[Project]:
    ids = grants.project_ids_of_user(session, user_id)
    return list(session.scalars(select(Project).where(Project.id.in_(ids)).order_by(Project.name)))


def domains_of_user(session: Session, user_id: str) -> list[Domain]:
    """GET /v3/auth/domains: the enabled domains the user holds a role on (directly or through a
    group), the domains a token may be scoped to."""
    ids = grants.domain_ids_of_user(session, user_id)
    query = select(Domain).where(Domain.id.in_(ids), Domain.enabled).order_by(Domain.name)
    return list(session.scalars(query))


def system_scopes_of_user(session: Session, user_id: str) -> list[dict[str, bool]]:
    """GET /v3/auth/system: `[{"all": true}]` when the user holds a role on the system."""
    return [{"all": True}] if grants.holds_system_role(session, user_id) else []


def require_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"Could not find user: {user_id}.")
    return user
