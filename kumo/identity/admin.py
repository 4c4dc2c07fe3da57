"""Keystone v3 administration: domains, projects, users, roles, role assignments, and a
read-only view of the service catalog.

Plain functions over a Session and the caller's RequestContext. Each one enforces its own
policy (Keystone's legacy defaults): writes and listing everybody need the admin role; a
non-admin may read their own user, the projects they belong to, roles and the domain.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.db import Database
from kumo.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.identity import inference, lockout, revocation
from kumo.identity.bootstrap import ROLE_NAMES
from kumo.identity.models import ImpliedRole, Project, Role, RoleAssignment, User
from kumo.identity.passwords import hash_password

DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"
# The roles `kumo bootstrap` creates are immutable, as keystone-manage bootstrap makes them:
# policy is written against their names.
IMMUTABLE_ROLES = frozenset(ROLE_NAMES)
_POLICY = "Policy doesn't allow this operation to be performed."

# --- request bodies -------------------------------------------------------------------------
# Keystone's JSON schemas: names are 1..64 (projects) or 1..255 characters with something other
# than whitespace; booleans are real booleans. Unknown attributes are ignored.

ProjectName = Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"\S")]
Name = Annotated[StrictStr, Field(min_length=1, max_length=255, pattern=r"\S")]
Id = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ProjectCreate(_Input):
    name: ProjectName
    domain_id: Id | None = None
    description: StrictStr | None = None
    enabled: StrictBool = True
    parent_id: Id | None = None
    is_domain: StrictBool = False
    tags: list[StrictStr] = Field(default_factory=list)


class ProjectUpdate(_Input):
    name: ProjectName | None = None
    domain_id: Id | None = None
    description: StrictStr | None = None
    enabled: StrictBool | None = None
    tags: list[StrictStr] | None = None


class UserCreate(_Input):
    name: Name
    domain_id: Id | None = None
    password: StrictStr | None = None
    default_project_id: Id | None = None
    enabled: StrictBool = True
    description: StrictStr | None = None
    email: Annotated[StrictStr, Field(max_length=255)] | None = None


class UserUpdate(_Input):
    name: Name | None = None
    domain_id: Id | None = None
    password: StrictStr | None = None
    default_project_id: Id | None = None
    enabled: StrictBool | None = None
    description: StrictStr | None = None
    email: Annotated[StrictStr, Field(max_length=255)] | None = None


class PasswordChange(_Input):
    password: StrictStr
    original_password: StrictStr


class RoleCreate(_Input):
    name: Name
    domain_id: Id | None = None
    description: StrictStr | None = None


class RoleUpdate(_Input):
    name: Name | None = None
    description: StrictStr | None = None


# --- helpers --------------------------------------------------------------------------------


def _duplicate(kind: str, name: str) -> Conflict:
    return Conflict(
        f"Conflict occurred attempting to store {kind} - Duplicate entry found with name {name}"
        + (f" at domain ID {DEFAULT_DOMAIN_ID}." if kind != "role" else ".")
    )


def _flush(session: Session, kind: str, name: str) -> None:
    """Flush, turning a lost race on a unique name into Keystone's 409."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise _duplicate(kind, name) from exc


def _check_domain(domain_id: str | None) -> None:
    if domain_id not in (None, DEFAULT_DOMAIN_ID):
        raise NotFound(f"Could not find domain: {domain_id}.")


def _not_null(update: BaseModel, *fields: str) -> None:
    for name in fields:
        if name in update.model_fields_set and getattr(update, name) is None:
            raise BadRequest(f"Invalid input for field '{name}': None is not a valid value.")


def _require_changes(update: BaseModel, kind: str) -> None:
    if not update.model_fields_set:
        raise BadRequest(f"Invalid input for field '{kind}': at least one attribute must be given.")


def require_project(session: Session, project_id: str) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"Could not find project: {project_id}.")
    return project


def require_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"Could not find user: {user_id}.")
    return user


def require_role(session: Session, role_id: str) -> Role:
    role = session.get(Role, role_id)
    if role is None:
        raise NotFound(f"Could not find role: {role_id}.")
    return role


def is_immutable(role: Role) -> bool:
    return role.name in IMMUTABLE_ROLES


def _is_member(session: Session, ctx: RequestContext, project_id: str) -> bool:
    if project_id == ctx.project_id:
        return True
    return bool(
        session.scalar(
            select(
                exists().where(RoleAssignment.user_id == ctx.user_id, RoleAssignment.project_id == project_id)
            )
        )
    )


def _require_self_or_admin(ctx: RequestContext, user_id: str) -> None:
    if not ctx.is_admin and user_id != ctx.user_id:
        raise Forbidden(_POLICY)


# --- domains --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Domain:
    id: str
    name: str
    description: str
    enabled: bool = True


DEFAULT_DOMAIN = Domain(DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME, "The default domain")


def list_domains(ctx: RequestContext, name: str | None = None, enabled: bool | None = None) -> list[Domain]:
    """Only the `default` domain exists; every project lives in it, so anyone may read it."""
    domains = [DEFAULT_DOMAIN]
    return [
        d for d in domains if (name is None or d.name == name) and (enabled is None or d.enabled == enabled)
    ]


def get_domain(ctx: RequestContext, domain_id: str) -> Domain:
    if domain_id != DEFAULT_DOMAIN_ID:
        raise NotFound(f"Could not find domain: {domain_id}.")
    return DEFAULT_DOMAIN


# --- projects -------------------------------------------------------------------------------


def list_projects(
    session: Session,
    ctx: RequestContext,
    *,
    name: str | None = None,
    domain_id: str | None = None,
    enabled: bool | None = None,
    parent_id: str | None = None,
    is_domain: bool | None = None,
) -> list[Project]:
    ctx.require_admin()
    if is_domain or domain_id not in (None, DEFAULT_DOMAIN_ID) or parent_id not in (None, DEFAULT_DOMAIN_ID):
        return []
    query = select(Project).order_by(Project.name)
    if name is not None:
        query = query.where(Project.name == name)
    if enabled is not None:
        query = query.where(Project.enabled == enabled)
    return list(session.scalars(query))


def get_project(session: Session, ctx: RequestContext, project_id: str) -> Project:
    """Admins see every project; others only projects they hold a role on (403 otherwise,
    whether or not it exists, like Keystone's policy check on the target)."""
    if not ctx.is_admin and not _is_member(session, ctx, project_id):
        raise Forbidden(_POLICY)
    return require_project(session, project_id)


def _check_parent(parent_id: str | None, is_domain: bool) -> None:
    if is_domain:
        raise BadRequest("Projects acting as domains are not supported.")
    if parent_id not in (None, DEFAULT_DOMAIN_ID):
        raise BadRequest("Hierarchical projects are not supported: parent_id must be the domain.")


def _check_tags(tags: list[str] | None) -> None:
    if tags:
        raise BadRequest("Project tags are not supported.")


def _project_name_taken(session: Session, name: str, exclude: str | None = None) -> bool:
    query = select(Project.id).where(Project.domain_id == DEFAULT_DOMAIN_ID, Project.name == name)
    if exclude is not None:
        query = query.where(Project.id != exclude)
    return session.scalar(query) is not None


def create_project(session: Session, ctx: RequestContext, spec: ProjectCreate) -> Project:
    ctx.require_admin()
    _check_domain(spec.domain_id)
    _check_parent(spec.parent_id, spec.is_domain)
    _check_tags(spec.tags)
    if _project_name_taken(session, spec.name):
        raise _duplicate("project", spec.name)
    project = Project(
        id=uuid.uuid4().hex,
        name=spec.name,
        domain_id=DEFAULT_DOMAIN_ID,
        description=spec.description or "",
        enabled=spec.enabled,
    )
    session.add(project)
    _flush(session, "project", spec.name)
    return project


def update_project(session: Session, ctx: RequestContext, project_id: str, update: ProjectUpdate) -> Project:
    ctx.require_admin()
    _require_changes(update, "project")
    _not_null(update, "name", "enabled")
    project = require_project(session, project_id)
    if "domain_id" in update.model_fields_set and update.domain_id != project.domain_id:
        raise BadRequest("Cannot change Domain ID.")
    _check_tags(update.tags)
    if update.name is not None and update.name != project.name:
        if _project_name_taken(session, update.name, exclude=project.id):
            raise _duplicate("project", update.name)
        project.name = update.name
    if "description" in update.model_fields_set:
        project.description = update.description or ""
    if update.enabled is not None:
        project.enabled = update.enabled
        if not update.enabled:
            revocation.revoke(session, project_id=project.id)
    _flush(session, "project", project.name)
    return project


def delete_project(session: Session, ctx: RequestContext, project_id: str) -> None:
    ctx.require_admin()
    project = require_project(session, project_id)
    session.execute(delete(RoleAssignment).where(RoleAssignment.project_id == project.id))
    revocation.revoke(session, project_id=project.id)
    session.delete(project)
    session.flush()


def list_user_projects(
    session: Session,
    ctx: RequestContext,
    user_id: str,
    *,
    name: str | None = None,
    enabled: bool | None = None,
) -> list[Project]:
    """GET /v3/users/{id}/projects: the projects the user holds any role on."""
    _require_self_or_admin(ctx, user_id)
    require_user(session, user_id)
    query = (
        select(Project)
        .where(Project.id.in_(select(RoleAssignment.project_id).where(RoleAssignment.user_id == user_id)))
        .order_by(Project.name)
    )
    if name is not None:
        query = query.where(Project.name == name)
    if enabled is not None:
        query = query.where(Project.enabled == enabled)
    return list(session.scalars(query))


# --- users ----------------------------------------------------------------------------------


def list_users(
    session: Session,
    ctx: RequestContext,
    *,
    name: str | None = None,
    domain_id: str | None = None,
    enabled: bool | None = None,
) -> list[User]:
    ctx.require_admin()
    if domain_id not in (None, DEFAULT_DOMAIN_ID):
        return []
    query = select(User).order_by(User.name)
    if name is not None:
        query = query.where(User.name == name)
    if enabled is not None:
        query = query.where(User.enabled == enabled)
    return list(session.scalars(query))


def get_user(session: Session, ctx: RequestContext, user_id: str) -> User:
    _require_self_or_admin(ctx, user_id)
    return require_user(session, user_id)


def _user_name_taken(session: Session, name: str, exclude: str | None = None) -> bool:
    query = select(User.id).where(User.domain_id == DEFAULT_DOMAIN_ID, User.name == name)
    if exclude is not None:
        query = query.where(User.id != exclude)
    return session.scalar(query) is not None


def create_user(session: Session, ctx: RequestContext, spec: UserCreate) -> User:
    ctx.require_admin()
    _check_domain(spec.domain_id)
    if spec.default_project_id is not None:
        require_project(session, spec.default_project_id)
    if _user_name_taken(session, spec.name):
        raise _duplicate("user", spec.name)
    user = User(
        id=uuid.uuid4().hex,
        name=spec.name,
        domain_id=DEFAULT_DOMAIN_ID,
        password_hash=hash_password(spec.password) if spec.password is not None else None,
        email=spec.email,
        description=spec.description or "",
        default_project_id=spec.default_project_id,
        enabled=spec.enabled,
    )
    session.add(user)
    _flush(session, "user", spec.name)
    return user


def update_user(session: Session, ctx: RequestContext, user_id: str, update: UserUpdate) -> User:
    ctx.require_admin()
    _require_changes(update, "user")
    _not_null(update, "name", "enabled")
    user = require_user(session, user_id)
    fields = update.model_fields_set
    if "domain_id" in fields and update.domain_id != user.domain_id:
        raise BadRequest("Cannot change Domain ID.")
    if update.name is not None and update.name != user.name:
        if _user_name_taken(session, update.name, exclude=user.id):
            raise _duplicate("user", update.name)
        user.name = update.name
    if "default_project_id" in fields:
        if update.default_project_id is not None:
            require_project(session, update.default_project_id)
        user.default_project_id = update.default_project_id
    if "password" in fields:
        user.password_hash = hash_password(update.password) if update.password is not None else None
        revocation.revoke(session, user_id=user.id)  # as Keystone: a new password ends old tokens
    if update.enabled is not None:
        user.enabled = update.enabled
        if not update.enabled:
            revocation.revoke(session, user_id=user.id)
    if update.enabled or "password" in fields:
        lockout.reset(session, user.id)  # Keystone: enabling a user (or a new password) unlocks it
    if "description" in fields:
        user.description = update.description or ""
    if "email" in fields:
        user.email = update.email
    _flush(session, "user", user.name)
    return user


def delete_user(session: Session, ctx: RequestContext, user_id: str) -> None:
    ctx.require_admin()
    user = require_user(session, user_id)
    session.execute(delete(RoleAssignment).where(RoleAssignment.user_id == user.id))
    revocation.revoke(session, user_id=user.id)
    lockout.reset(session, user.id)
    session.delete(user)
    session.flush()


def change_password(db: Database, policy: lockout.Lockout, user_id: str, change: PasswordChange) -> None:
    """POST /v3/users/{id}/password: a user proves the old password to set a new one. Like
    Keystone this needs no token (a user whose password expired can still change it); the
    old password is checked as a login's is (lockout, failures counted, the same cost for a
    user that does not exist), and every token of the user issued before is revoked."""
    with policy.attempt(db, lambda _: user_id) as attempt, db.transaction() as session:
        user = lockout.check_password(attempt, session.get(User, user_id), change.original_password)
        user.password_hash = hash_password(change.password)
        revocation.revoke(session, user_id=user.id)
        session.flush()


# --- roles ----------------------------------------------------------------------------------


def list_roles(
    session: Session, ctx: RequestContext, *, name: str | None = None, domain_id: str | None = None
) -> list[Role]:
    """Every authenticated user may read the (global) roles."""
    if domain_id is not None:
        return []  # domain-specific roles do not exist
    query = select(Role).order_by(Role.name)
    if name is not None:
        query = query.where(Role.name == name)
    return list(session.scalars(query))


def get_role(session: Session, ctx: RequestContext, role_id: str) -> Role:
    return require_role(session, role_id)


def _role_name_taken(session: Session, name: str, exclude: str | None = None) -> bool:
    query = select(Role.id).where(Role.name == name)
    if exclude is not None:
        query = query.where(Role.id != exclude)
    return session.scalar(query) is not None


def create_role(session: Session, ctx: RequestContext, spec: RoleCreate) -> Role:
    ctx.require_admin()
    if spec.domain_id is not None:
        raise BadRequest("Domain-specific roles are not supported.")
    if _role_name_taken(session, spec.name):
        raise _duplicate("role", spec.name)
    role = Role(id=uuid.uuid4().hex, name=spec.name, description=spec.description or "")
    session.add(role)
    _flush(session, "role", spec.name)
    return role


def _require_mutable(role: Role, verb: str) -> None:
    if is_immutable(role):
        raise Forbidden(f"Unable to {verb} immutable role {role.id}: the resource option 'immutable' is set.")


def update_role(session: Session, ctx: RequestContext, role_id: str, update: RoleUpdate) -> Role:
    ctx.require_admin()
    _require_changes(update, "role")
    _not_null(update, "name")
    role = require_role(session, role_id)
    _require_mutable(role, "update")
    if update.name is not None and update.name != role.name:
        if update.name in IMMUTABLE_ROLES or _role_name_taken(session, update.name, exclude=role.id):
            raise _duplicate("role", update.name)
        role.name = update.name
    if "description" in update.model_fields_set:
        role.description = update.description or ""
    _flush(session, "role", role.name)
    return role


def delete_role(session: Session, ctx: RequestContext, role_id: str) -> None:
    ctx.require_admin()
    role = require_role(session, role_id)
    _require_mutable(role, "delete")
    session.execute(delete(RoleAssignment).where(RoleAssignment.role_id == role.id))
    session.delete(role)
    session.flush()


# --- implied roles --------------------------------------------------------------------------


@dataclass(frozen=True)
class Inference:
    prior: Role
    implies: list[Role]


def _inference_not_found(prior_id: str, implied_id: str) -> NotFound:
    return NotFound(f"{prior_id} does not imply {implied_id}.")


def create_implied_role(session: Session, ctx: RequestContext, prior_id: str, implied_id: str) -> Inference:
    """PUT /v3/roles/{prior}/implies/{implied}: idempotent. `admin` is never implied, and a rule
    closing a loop is refused (Keystone's 403 and 400)."""
    ctx.require_admin()
    prior, implied = require_role(session, prior_id), require_role(session, implied_id)
    if implied.name in inference.PROHIBITED_IMPLIED:
        raise Forbidden(f"{implied.name} is not a permitted implied role.")
    if session.get(ImpliedRole, (prior.id, implied.id)) is None:
        if prior.id == implied.id or inference.would_cycle(session, prior.id, implied.id):
            raise BadRequest(f"Role {prior.id} implying {implied.id} would create a cycle.")
        try:
            with session.begin_nested():
                session.add(ImpliedRole(prior_role_id=prior.id, implied_role_id=implied.id))
        except IntegrityError:
            pass  # created concurrently: the outcome is the same
    return Inference(prior, [implied])


def get_implied_role(session: Session, ctx: RequestContext, prior_id: str, implied_id: str) -> Inference:
    ctx.require_admin()
    prior, implied = require_role(session, prior_id), require_role(session, implied_id)
    if session.get(ImpliedRole, (prior.id, implied.id)) is None:
        raise _inference_not_found(prior_id, implied_id)
    return Inference(prior, [implied])


def delete_implied_role(session: Session, ctx: RequestContext, prior_id: str, implied_id: str) -> None:
    """Tokens already issued keep the roles they list until they expire (they carry them)."""
    ctx.require_admin()
    rule = session.get(ImpliedRole, (prior_id, implied_id))
    if rule is None:
        require_role(session, prior_id)
        require_role(session, implied_id)
        raise _inference_not_found(prior_id, implied_id)
    session.delete(rule)
    session.flush()


def list_implied_roles(session: Session, ctx: RequestContext, prior_id: str) -> Inference:
    """GET /v3/roles/{prior}/implies: the roles it implies directly."""
    ctx.require_admin()
    prior = require_role(session, prior_id)
    implied = session.scalars(
        select(Role)
        .join(ImpliedRole, ImpliedRole.implied_role_id == Role.id)
        .where(ImpliedRole.prior_role_id == prior.id)
        .order_by(Role.name)
    )
    return Inference(prior, list(implied))


def list_role_inferences(session: Session, ctx: RequestContext) -> list[Inference]:
    """GET /v3/role_inferences: every rule, grouped by prior role."""
    ctx.require_admin()
    roles = {r.id: r for r in session.scalars(select(Role))}
    grouped: dict[str, list[Role]] = {}
    for prior_id, implied_id in session.execute(
        select(ImpliedRole.prior_role_id, ImpliedRole.implied_role_id)
    ):
        grouped.setdefault(prior_id, []).append(roles[implied_id])
    return [
        Inference(roles[p], sorted(implied, key=lambda r: r.name))
        for p, implied in sorted(grouped.items(), key=lambda kv: roles[kv[0]].name)
    ]


# --- role assignments -----------------------------------------------------------------------


def _grant_targets(session: Session, project_id: str, user_id: str, role_id: str) -> None:
    require_project(session, project_id)
    require_user(session, user_id)
    require_role(session, role_id)


def grant_role(session: Session, ctx: RequestContext, project_id: str, user_id: str, role_id: str) -> None:
    """PUT /v3/projects/{p}/users/{u}/roles/{r}: idempotent."""
    ctx.require_admin()
    _grant_targets(session, project_id, user_id, role_id)
    if session.get(RoleAssignment, (user_id, project_id, role_id)) is None:
        try:
            with session.begin_nested():
                session.add(RoleAssignment(user_id=user_id, project_id=project_id, role_id=role_id))
        except IntegrityError:
            pass  # granted concurrently: the outcome is the same


def _assignment_not_found(project_id: str, user_id: str, role_id: str) -> NotFound:
    return NotFound(
        f"Could not find role assignment with role: {role_id}, user or group: {user_id}, "
        f"project, domain, or system: {project_id}."
    )


def check_role(session: Session, ctx: RequestContext, project_id: str, user_id: str, role_id: str) -> None:
    _require_self_or_admin(ctx, user_id)
    _grant_targets(session, project_id, user_id, role_id)
    if session.get(RoleAssignment, (user_id, project_id, role_id)) is None:
        raise _assignment_not_found(project_id, user_id, role_id)


def revoke_role(session: Session, ctx: RequestContext, project_id: str, user_id: str, role_id: str) -> None:
    ctx.require_admin()
    _grant_targets(session, project_id, user_id, role_id)
    assignment = session.get(RoleAssignment, (user_id, project_id, role_id))
    if assignment is None:
        raise _assignment_not_found(project_id, user_id, role_id)
    revocation.revoke(session, user_id=user_id, project_id=project_id)
    session.delete(assignment)
    session.flush()


def roles_of_user_on_project(
    session: Session, ctx: RequestContext, project_id: str, user_id: str
) -> list[Role]:
    _require_self_or_admin(ctx, user_id)
    require_project(session, project_id)
    require_user(session, user_id)
    query = (
        select(Role)
        .join(RoleAssignment, RoleAssignment.role_id == Role.id)
        .where(RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id)
        .order_by(Role.name)
    )
    return list(session.scalars(query))


@dataclass(frozen=True)
class Assignment:
    user: User
    project: Project
    role: Role
    # In an effective listing, the assigned role this one is implied by.
    prior_role: Role | None = None


@dataclass(frozen=True)
class AssignmentFilter:
    user_id: str | None = None
    project_id: str | None = None
    role_id: str | None = None
    # Filters on things kumo does not have (groups, domain or system scope) match nothing.
    other_scope: bool = False
    # Keystone's `effective`: implied roles listed as well.
    effective: bool = False


def _with_implied(session: Session, rows: list[Assignment]) -> list[Assignment]:
    """Each assignment, followed by one per role its role implies (transitively)."""
    graph = inference.rules(session)
    if not graph:
        return rows
    roles = {r.id: r for r in session.scalars(select(Role))}
    out: list[Assignment] = []
    seen: set[tuple[str, str, str]] = set()
    for a in rows:
        for rid in [a.role.id, *sorted(inference.closure([a.role.id], graph) - {a.role.id})]:
            key = (a.user.id, a.project.id, rid)
            if key not in seen:
                seen.add(key)
                prior = None if rid == a.role.id else a.role
                out.append(Assignment(a.user, a.project, roles[rid], prior))
    return out


def list_assignments(session: Session, ctx: RequestContext, flt: AssignmentFilter) -> list[Assignment]:
    """GET /v3/role_assignments. Admins list everything; others only their own assignments."""
    if not ctx.is_admin and flt.user_id != ctx.user_id:
        raise Forbidden(_POLICY)
    if flt.other_scope:
        return []
    query = (
        select(User, Project, Role)
        .join(RoleAssignment, RoleAssignment.user_id == User.id)
        .join(Project, Project.id == RoleAssignment.project_id)
        .join(Role, Role.id == RoleAssignment.role_id)
        .order_by(User.name, Project.name, Role.name)
    )
    if flt.user_id is not None:
        query = query.where(RoleAssignment.user_id == flt.user_id)
    if flt.project_id is not None:
        query = query.where(RoleAssignment.project_id == flt.project_id)
    if flt.role_id is not None and not flt.effective:
        query = query.where(RoleAssignment.role_id == flt.role_id)
    rows = [Assignment(user, project, role) for user, project, role in session.execute(query)]
    if flt.effective:
        rows = _with_implied(session, rows)
        if flt.role_id is not None:
            rows = [a for a in rows if a.role.id == flt.role_id]
    return rows


# --- catalog (read-only, derived from kumo.identity.service.catalog) ------------------------


@dataclass(frozen=True)
class CatalogService:
    id: str
    type: str
    name: str


@dataclass(frozen=True)
class CatalogEndpoint:
    id: str
    service_id: str
    interface: str
    region: str
    url: str


def _services(catalog: list[dict[str, Any]]) -> list[CatalogService]:
    return [CatalogService(s["id"], s["type"], s["name"]) for s in catalog]


def _endpoints(catalog: list[dict[str, Any]]) -> list[CatalogEndpoint]:
    return [
        CatalogEndpoint(e["id"], s["id"], e["interface"], e["region_id"], e["url"])
        for s in catalog
        for e in s["endpoints"]
    ]


def list_services(
    ctx: RequestContext, catalog: list[dict[str, Any]], *, type: str | None = None, name: str | None = None
) -> list[CatalogService]:
    ctx.require_admin()
    return [
        s for s in _services(catalog) if (type is None or s.type == type) and (name is None or s.name == name)
    ]


def get_service(ctx: RequestContext, catalog: list[dict[str, Any]], service_id: str) -> CatalogService:
    ctx.require_admin()
    for service in _services(catalog):
        if service.id == service_id:
            return service
    raise NotFound(f"Could not find service: {service_id}.")


def list_endpoints(
    ctx: RequestContext,
    catalog: list[dict[str, Any]],
    *,
    service_id: str | None = None,
    interface: str | None = None,
    region_id: str | None = None,
) -> list[CatalogEndpoint]:
    ctx.require_admin()
    return [
        e
        for e in _endpoints(catalog)
        if (service_id is None or e.service_id == service_id)
        and (interface is None or e.interface == interface)
        and (region_id is None or e.region == region_id)
    ]


def get_endpoint(ctx: RequestContext, catalog: list[dict[str, Any]], endpoint_id: str) -> CatalogEndpoint:
    ctx.require_admin()
    for endpoint in _endpoints(catalog):
        if endpoint.id == endpoint_id:
            return endpoint
    raise NotFound(f"Could not find endpoint: {endpoint_id}.")


def list_regions(ctx: RequestContext, region: str) -> list[str]:
    """Regions are readable by any authenticated user, as in Keystone."""
    return [region]


def get_region(ctx: RequestContext, region: str, region_id: str) -> str:
    if region_id != region:
        raise NotFound(f"Could not find region: {region_id}.")
    return region
