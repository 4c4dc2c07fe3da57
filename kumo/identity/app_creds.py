"""Application credentials: a user delegates (a subset of) their roles on one project to a
secret that automation authenticates with (Keystone's `application_credential` method).

Invariants: the secret is returned once, by `create`, and only its scrypt hash is stored; a
credential's roles are a subset of its creator's on the project when created, and a login
with it is refused once the user no longer holds one of them; it never outlives `expires_at`;
a token it gave is revoked when it is deleted (a revocation event by credential). A token
from a restricted credential (the default) cannot create or delete application credentials.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.db import utcnow
from kumo.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from kumo.identity import grants, inference, revocation
from kumo.identity.models import GLOBAL_ROLE, ApplicationCredential, Domain, Project, Role, User
from kumo.identity.passwords import hash_password, verify_password

_POLICY = "Policy doesn't allow this operation to be performed."
_AUTH = "The request you have made requires authentication."

Name = Annotated[StrictStr, Field(min_length=1, max_length=255, pattern=r"\S")]


class RoleRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: StrictStr | None = None
    name: StrictStr | None = None


class AppCredCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: Name
    description: StrictStr | None = None
    secret: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    expires_at: StrictStr | None = None
    roles: list[RoleRef] | None = None
    unrestricted: StrictBool = False
    access_rules: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class AppCred:
    cred: ApplicationCredential
    roles: list[Role]
    secret: str | None = None  # only in the answer to its creation


def _parse_expiry(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid input for field 'expires_at': {value!r} is not a date-time.") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    if parsed <= utcnow():
        raise BadRequest("The expiration time of an application credential must be in the future.")
    return parsed


def _require_self(ctx: RequestContext, user_id: str) -> None:
    if ctx.user_id != user_id:
        raise Forbidden(_POLICY)


def _roles(session: Session, role_ids: list[str]) -> list[Role]:
    if not role_ids:
        return []
    return list(session.scalars(select(Role).where(Role.id.in_(role_ids)).order_by(Role.name)))


def create(session: Session, ctx: RequestContext, user_id: str, spec: AppCredCreate) -> AppCred:
    """POST /v3/users/{user_id}/application_credentials, by the user, with a project-scoped
    token: the credential is for that project and holds the roles asked for (all of the
    token's when none are), each one the token holds."""
    _require_self(ctx, user_id)
    if ctx.restricted:
        raise Forbidden("Using a restricted application credential token to create another is not allowed.")
    if ctx.project_id is None:
        raise Forbidden("An application credential is created with a project-scoped token.")
    if spec.access_rules:
        raise BadRequest("Access rules are not supported.")
    expires_at = _parse_expiry(spec.expires_at)
    if spec.roles is None:
        wanted = [rid for rid in _ids_of_names(session, ctx.roles) if rid]
    else:
        wanted = _held_now(session, user_id, ctx.project_id, spec.roles)
    if session.scalar(
        select(ApplicationCredential.id).where(
            ApplicationCredential.user_id == user_id, ApplicationCredential.name == spec.name
        )
    ):
        raise Conflict(f"Duplicate application credential name {spec.name}.")
    secret = spec.secret or secrets.token_urlsafe(64)
    cred = ApplicationCredential(
        id=uuid.uuid4().hex,
        name=spec.name,
        user_id=user_id,
        project_id=ctx.project_id,
        secret_hash=hash_password(secret),
        description=spec.description or "",
        expires_at=expires_at,
        unrestricted=spec.unrestricted,
        role_ids=sorted(set(wanted)),
    )
    session.add(cred)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"Duplicate application credential name {spec.name}.") from exc
    return AppCred(cred, _roles(session, cred.role_ids), secret)


def _held_now(session: Session, user_id: str, project_id: str, refs: list[RoleRef]) -> list[str]:
    """The ids of the roles `refs` name (by id or by name), each one the user holds on the
    project now: assigned directly or through a group, or implied by one that is. A role
    granted after the token was issued counts, as in Keystone (the token's roles do not bound
    an explicit list)."""
    held_ids = inference.closure(
        grants.assigned_role_ids(session, user_id, grants.PROJECT, project_id), inference.rules(session)
    )
    # A name names a global role (Keystone resolves role names among the global roles); a
    # domain-specific role of the same name is a different role.
    by_name = {r.name: r.id for r in _roles(session, sorted(held_ids)) if r.domain_id == GLOBAL_ROLE}
    wanted = []
    for ref in refs:
        role_id = ref.id if ref.id is not None else by_name.get(ref.name or "")
        if role_id is None or role_id not in held_ids:
            raise Forbidden(f"The user does not hold role {ref.id or ref.name} on project {project_id}.")
        wanted.append(role_id)
    return wanted


def _ids_of_names(session: Session, names: tuple[str, ...]) -> list[str]:
    by_name = {
        name: rid
        for name, rid in session.execute(
            select(Role.name, Role.id).where(Role.name.in_(names), Role.domain_id == GLOBAL_ROLE)
        )
    }
    return [by_name.get(n, "") for n in names]


def _require(session: Session, ctx: RequestContext, user_id: str, cred_id: str) -> ApplicationCredential:
    if ctx.user_id != user_id and not ctx.can_read_everything:
        raise Forbidden(_POLICY)
    cred = session.get(ApplicationCredential, cred_id)
    if cred is None or cred.user_id != user_id:
        raise NotFound(f"Could not find Application Credential: {cred_id}.")
    return cred


def list_for_user(
    session: Session, ctx: RequestContext, user_id: str, name: str | None = None
) -> list[AppCred]:
    if ctx.user_id != user_id and not ctx.can_read_everything:
        raise Forbidden(_POLICY)
    if session.get(User, user_id) is None:
        raise NotFound(f"Could not find user: {user_id}.")
    query = select(ApplicationCredential).where(ApplicationCredential.user_id == user_id)
    if name is not None:
        query = query.where(ApplicationCredential.name == name)
    creds = list(session.scalars(query.order_by(ApplicationCredential.name)))
    roles = {r.id: r for r in _roles(session, sorted({rid for c in creds for rid in c.role_ids}))}
    return [AppCred(c, [roles[r] for r in c.role_ids if r in roles]) for c in creds]


def get(session: Session, ctx: RequestContext, user_id: str, cred_id: str) -> AppCred:
    cred = _require(session, ctx, user_id, cred_id)
    return AppCred(cred, _roles(session, cred.role_ids))


def delete(session: Session, ctx: RequestContext, user_id: str, cred_id: str) -> None:
    """Its tokens are revoked with it."""
    if ctx.restricted:
        raise Forbidden("Using a restricted application credential token to delete one is not allowed.")
    if ctx.user_id != user_id and not ctx.is_admin:
        raise Forbidden(_POLICY)
    cred = _require(session, ctx, user_id, cred_id)
    revocation.revoke(session, app_cred_id=cred.id)
    session.delete(cred)
    session.flush()


@dataclass(frozen=True)
class Login:
    """What an accepted application credential login scopes its token to."""

    cred: ApplicationCredential
    user: User
    project: Project
    project_domain: Domain
    roles: list[tuple[str, str]]


def _find(session: Session, ref: dict[str, Any], find_user: Any) -> ApplicationCredential | None:
    if "id" in ref:
        return session.get(ApplicationCredential, str(ref["id"]))
    user_ref = ref.get("user")
    if "name" not in ref or not isinstance(user_ref, dict):
        raise BadRequest("Expecting to find id, or name and user, in application_credential.")
    user = find_user(session, user_ref)
    if user is None:
        return None
    return session.scalar(
        select(ApplicationCredential).where(
            ApplicationCredential.user_id == user.id, ApplicationCredential.name == ref["name"]
        )
    )


def authenticate(session: Session, ref: dict[str, Any], find_user: Any) -> Login:
    """The `application_credential` method: the secret (one scrypt check whether or not the
    credential exists), then the credential's expiry, its user and project, and its roles,
    each still held by the user on the project (401 otherwise)."""
    if not isinstance(ref, dict) or "secret" not in ref:
        raise BadRequest("Expecting to find secret in application_credential.")
    cred = _find(session, ref, find_user)
    if not verify_password(str(ref["secret"]), cred.secret_hash if cred else None) or cred is None:
        raise Unauthorized(_AUTH)
    if cred.expires_at is not None and cred.expires_at <= utcnow():
        raise Unauthorized("The application credential has expired.")
    user = session.get(User, cred.user_id)
    project = session.get(Project, cred.project_id)
    if user is None or not user.enabled or project is None or not project.enabled:
        raise Unauthorized(_AUTH)
    project_domain = session.get(Domain, project.domain_id)
    if project_domain is None or not project_domain.enabled:
        raise Unauthorized(_AUTH)
    held = set(grants.assigned_role_ids(session, user.id, grants.PROJECT, project.id))
    held = inference.closure(held, inference.rules(session))
    if not set(cred.role_ids) <= held:
        raise Unauthorized("The user no longer holds every role of the application credential.")
    return Login(cred, user, project, project_domain, inference.effective(session, cred.role_ids))
