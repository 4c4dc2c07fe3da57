"""Keystone v3 administration: domains, projects, users, roles, role assignments (the
catalog's regions, services and endpoints: `kumo.identity.catalog`).

Plain functions over a Session and the caller's RequestContext. Each one enforces its own
policy (Keystone's legacy defaults): writes and listing everybody need the admin role; a
non-admin may read their own user, the projects they belong to, roles and the domain.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.db import Database
from kumo.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.identity import grants, hierarchy, inference, lockout, project_tags, revocation
from kumo.identity.bootstrap import ROLE_NAMES
from kumo.identity.models import (
    GLOBAL_ROLE,
    ApplicationCredential,
    Credential,
    Domain,
    Grant,
    Group,
    GroupMembership,
    ImpliedRole,
    Project,
    ProjectLimit,
    Role,
    User,
)
from kumo.identity.passwords import hash_password
from kumo.tags import TagFilter

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


class _ExtraInput(BaseModel):
    """A body that keeps the attributes Keystone does not know as the resource's extra
    (Keystone's schemas allow additional properties and show them back), except the
    `EXCLUDED` ones: Keystone's own attributes that kumo does not keep or that are the view's."""

    model_config = ConfigDict(extra="allow")
    EXCLUDED: ClassVar[frozenset[str]] = frozenset()

    def extra(self) -> dict[str, Any]:
        return {k: v for k, v in (self.model_extra or {}).items() if k not in self.EXCLUDED}


class _ProjectInput(_ExtraInput):
    # options: not kept; parent_id, is_domain: never changed by an update; id, links: the view's
    EXCLUDED = frozenset({"options", "id", "links", "parent_id", "is_domain"})


class ProjectCreate(_ProjectInput):
    name: ProjectName
    domain_id: Id | None = None
    description: StrictStr | None = None
    enabled: StrictBool = True
    parent_id: Id | None = None
    is_domain: StrictBool = False
    tags: list[Any] = Field(default_factory=list)


class ProjectUpdate(_ProjectInput):
    name: ProjectName | None = None
    domain_id: Id | None = None
    description: StrictStr | None = None
    enabled: StrictBool | None = None
    parent_id: Id | None = None
    tags: list[Any] | None = None
    is_domain: StrictBool | None = None


class _UserInput(_ExtraInput):
    # Keystone's own user attributes kumo does not store: never kept as extra ones.
    EXCLUDED = frozenset({"id", "links", "options", "federated", "password_expires_at"})


class UserCreate(_UserInput):
    name: Name
    domain_id: Id | None = None
    password: StrictStr | None = None
    default_project_id: Id | None = None
    enabled: StrictBool = True
    description: StrictStr | None = None
    email: Annotated[StrictStr, Field(max_length=255)] | None = None


class UserUpdate(_UserInput):
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


def _duplicate(kind: str, name: str, domain_id: str | None = None) -> Conflict:
    return Conflict(
        f"Conflict occurred attempting to store {kind} - Duplicate entry found with name {name}"
        + (f" at domain ID {domain_id}." if domain_id else ".")
    )


def _flush(session: Session, kind: str, name: str, domain_id: str | None = None) -> None:
    """Flush, turning a lost race on a unique name into Keystone's 409."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise _duplicate(kind, name, domain_id) from exc


def _domain_for(session: Session, ctx: RequestContext, domain_id: str | None) -> str:
    """The domain a new project, user or group goes to: the one named, else the caller's
    domain-scoped token's, else `default`. It must exist."""
    chosen = domain_id or ctx.domain_id or DEFAULT_DOMAIN_ID
    if domain_id is not None and session.get(Domain, chosen) is None:
        raise NotFound(f"Could not find domain: {domain_id}.")
    return chosen


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


def _as_domain(session: Session, project_id: str) -> Domain | None:
    """The domain `project_id` names when it is no project: a project acting as a domain
    (Keystone's `is_domain`), which kumo keeps as the domain alone."""
    if session.get(Project, project_id) is not None:
        return None
    return session.get(Domain, project_id)


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
    return role.name in IMMUTABLE_ROLES and role.domain_id == GLOBAL_ROLE


def _is_member(session: Session, ctx: RequestContext, project_id: str) -> bool:
    if project_id == ctx.project_id:
        return True
    return project_id in grants.project_ids_of_user(session, ctx.user_id)


def _require_self_or_admin(ctx: RequestContext, user_id: str) -> None:
    if not ctx.can_read_everything and user_id != ctx.user_id:
        raise Forbidden(_POLICY)


_NO_DOMAIN_TAGS = "Domain tags are not supported."


def _check_tags(tags: list[Any] | None) -> None:
    if tags:
        raise BadRequest(_NO_DOMAIN_TAGS)


# --- domains --------------------------------------------------------------------------------


class DomainCreate(_Input):
    name: ProjectName
    description: StrictStr | None = None
    enabled: StrictBool = True
    tags: list[StrictStr] = Field(default_factory=list)


class DomainUpdate(_Input):
    name: ProjectName | None = None
    description: StrictStr | None = None
    enabled: StrictBool | None = None
    tags: list[StrictStr] | None = None


def require_domain(session: Session, domain_id: str) -> Domain:
    domain = session.get(Domain, domain_id)
    if domain is None:
        raise NotFound(f"Could not find domain: {domain_id}.")
    return domain


def list_domains(
    session: Session, ctx: RequestContext, name: str | None = None, enabled: bool | None = None
) -> list[Domain]:
    """Admins (and system readers) list every domain; others the domains of their projects and
    of their own user, as Keystone's default policy lets them read those."""
    query = select(Domain).order_by(Domain.name)
    if name is not None:
        query = query.where(Domain.name == name)
    if enabled is not None:
        query = query.where(Domain.enabled == enabled)
    if not ctx.can_read_everything:
        mine = {ctx.domain_id} | set(
            session.scalars(
                select(Project.domain_id).where(
                    Project.id.in_(grants.project_ids_of_user(session, ctx.user_id))
                )
            )
        )
        mine |= set(session.scalars(select(User.domain_id).where(User.id == ctx.user_id)))
        query = query.where(Domain.id.in_(sorted(d for d in mine if d)))
    return list(session.scalars(query))


def get_domain(session: Session, ctx: RequestContext, domain_id: str) -> Domain:
    domain = require_domain(session, domain_id)
    if not ctx.can_read_everything and domain.id not in {d.id for d in list_domains(session, ctx)}:
        raise Forbidden(_POLICY)
    return domain


def _domain_name_taken(session: Session, name: str, exclude: str | None = None) -> bool:
    query = select(Domain.id).where(Domain.name == name)
    if exclude is not None:
        query = query.where(Domain.id != exclude)
    return session.scalar(query) is not None


def create_domain(session: Session, ctx: RequestContext, spec: DomainCreate) -> Domain:
    ctx.require_admin()
    _check_tags(spec.tags)
    if _domain_name_taken(session, spec.name):
        raise _duplicate("domain", spec.name)
    domain = Domain(
        id=uuid.uuid4().hex, name=spec.name, description=spec.description or "", enabled=spec.enabled
    )
    session.add(domain)
    _flush(session, "domain", spec.name)
    return domain


def _revoke_domain(session: Session, domain: Domain) -> None:
    """Every token scoped to the domain or one of its projects, or of one of its users."""
    revocation.revoke(session, project_id=domain.id)
    for project_id in session.scalars(select(Project.id).where(Project.domain_id == domain.id)):
        revocation.revoke(session, project_id=project_id)
    for user_id in session.scalars(select(User.id).where(User.domain_id == domain.id)):
        revocation.revoke(session, user_id=user_id)


def update_domain(session: Session, ctx: RequestContext, domain_id: str, update: DomainUpdate) -> Domain:
    """Disabling a domain ends its tokens and those of its projects and users; they cannot
    authenticate again until it is enabled. The default domain stays enabled."""
    ctx.require_admin()
    _require_changes(update, "domain")
    _not_null(update, "name", "enabled")
    _check_tags(update.tags)
    domain = require_domain(session, domain_id)
    if update.name is not None and update.name != domain.name:
        if _domain_name_taken(session, update.name, exclude=domain.id):
            raise _duplicate("domain", update.name)
        domain.name = update.name
    if "description" in update.model_fields_set:
        domain.description = update.description or ""
    if update.enabled is False and domain.enabled:
        if domain.id == DEFAULT_DOMAIN_ID:
            raise Forbidden("The default domain cannot be disabled.")
        _revoke_domain(session, domain)
    if update.enabled is not None:
        domain.enabled = update.enabled
    _flush(session, "domain", domain.name)
    return domain


def delete_domain(session: Session, ctx: RequestContext, domain_id: str) -> None:
    """As Keystone: only a disabled domain is deleted, and with it its projects, users, groups
    and every grant on them."""
    ctx.require_admin()
    domain = require_domain(session, domain_id)
    if domain.id == DEFAULT_DOMAIN_ID:
        raise Forbidden("The default domain cannot be deleted.")
    if domain.enabled:
        raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
    for project in session.scalars(select(Project).where(Project.domain_id == domain.id)):
        _delete_project(session, project)
    for user in session.scalars(select(User).where(User.domain_id == domain.id)):
        _delete_user(session, user)
    for group in session.scalars(select(Group).where(Group.domain_id == domain.id)):
        _delete_group(session, group)
    for role in session.scalars(select(Role).where(Role.domain_id == domain.id)):
        session.execute(delete(Grant).where(Grant.role_id == role.id))
        session.delete(role)
    grants.forget_target(session, grants.DOMAIN, domain.id)
    _revoke_domain(session, domain)
    session.delete(domain)
    session.flush()


# --- projects -------------------------------------------------------------------------------


def list_projects(
    session: Session,
    ctx: RequestContext,
    *,
    name: str | None = None,
    domain_id: str | None = None,
    enabled: bool | None = None,
    parent_id: str | None = None,
    tags: TagFilter | None = None,
    is_domain: bool | None = None,
) -> list[Project] | list[Domain]:
    """GET /v3/projects. `parent_id` names a project (its children) or a domain (its top-level
    projects). `is_domain` true lists the domains, each a project acting as one in Keystone,
    with the same filters: such a project has no domain, no parent and no tags (so a
    `domain_id` or `parent_id` filter matches none of them); other listings leave them out."""
    ctx.require_reader()
    if is_domain:
        if domain_id is not None or parent_id is not None:
            return []
        domains = list_domains(session, ctx, name=name, enabled=enabled)
        return domains if not tags or tags.matches([]) else []
    query = select(Project).order_by(Project.name)
    if domain_id is not None:
        query = query.where(Project.domain_id == domain_id)
    if parent_id is not None:
        query = query.where(
            (Project.parent_id == parent_id)
            | (Project.parent_id.is_(None) & (Project.domain_id == parent_id))
        )
    if name is not None:
        query = query.where(Project.name == name)
    if enabled is not None:
        query = query.where(Project.enabled == enabled)
    found = list(session.scalars(query))
    return [p for p in found if tags.matches(p.tags or [])] if tags else found


def get_project(session: Session, ctx: RequestContext, project_id: str) -> Project:
    """Admins see every project; others only projects they hold a role on (403 otherwise,
    whether or not it exists, like Keystone's policy check on the target)."""
    if not ctx.can_read_everything and not _is_member(session, ctx, project_id):
        raise Forbidden(_POLICY)
    return require_project(session, project_id)


@dataclass(frozen=True)
class ProjectTree:
    """A project shown with `?parents_as_list`, `subtree_as_list`, `parents_as_ids` or
    `subtree_as_ids`: the ancestors or descendants the caller may see, or their ids nested."""

    project: Project | Domain  # a domain is shown as the project acting as it
    parents: list[Project] | None = None
    subtree: list[Project] | None = None
    parents_ids: dict[str, Any] | None = None
    subtree_ids: dict[str, Any] | None = None
    shown: frozenset[str] = frozenset()  # which of the four were asked for


def get_project_tree(
    session: Session, ctx: RequestContext, project_id: str, asked: frozenset[str]
) -> ProjectTree:
    """GET /v3/projects/{id} with Keystone's hierarchy query parameters. As Keystone, the
    lists hold only the projects the caller may read; asking for both a list and the ids of
    the same side is a 400."""
    for side in ("parents", "subtree"):
        if {f"{side}_as_list", f"{side}_as_ids"} <= asked:
            raise BadRequest(f"Cannot use {side}_as_list and {side}_as_ids query params at the same time.")
    if _as_domain(session, project_id) is not None:
        return ProjectTree(get_domain(session, ctx, project_id))  # a domain, as the project it is
    project = get_project(session, ctx, project_id)
    if not asked:
        return ProjectTree(project)
    parents = grants.project_parents(session)

    def visible(ids: list[str]) -> list[Project]:
        if not ids:
            return []
        found = {p.id: p for p in session.scalars(select(Project).where(Project.id.in_(ids)))}
        readable = (
            set(ids) if ctx.can_read_everything else set(grants.project_ids_of_user(session, ctx.user_id))
        )
        return [found[i] for i in ids if i in found and i in readable]

    return ProjectTree(
        project,
        parents=visible(hierarchy.ancestors(project.id, parents)) if "parents_as_list" in asked else None,
        subtree=visible(hierarchy.subtree(project.id, parents)) if "subtree_as_list" in asked else None,
        parents_ids=hierarchy.parents_as_ids(project.id, parents),
        subtree_ids=hierarchy.subtree_as_ids(project.id, parents),
        shown=asked,
    )


def _parent_for(session: Session, ctx: RequestContext, spec: ProjectCreate) -> tuple[str, Project | None]:
    """The new project's domain and parent project. `parent_id` names a project (in the same
    domain) or the domain itself; without `domain_id` the parent's domain is the project's."""
    parent = session.get(Project, spec.parent_id) if spec.parent_id is not None else None
    if parent is None:
        domain_id = _domain_for(session, ctx, spec.domain_id)
        if spec.parent_id not in (None, domain_id):
            raise NotFound(f"Could not find project: {spec.parent_id}.")
        return domain_id, None
    domain_id = _domain_for(session, ctx, spec.domain_id or parent.domain_id)
    if parent.domain_id != domain_id:
        raise BadRequest(
            f"Cannot create project, the parent ({parent.id}) is in a different domain ({parent.domain_id})."
        )
    if hierarchy.depth(parent.id, grants.project_parents(session)) + 1 > hierarchy.MAX_DEPTH:
        raise Forbidden(f"Max hierarchy depth reached for {parent.id} branch.")
    return domain_id, parent


def _project_name_taken(session: Session, domain_id: str, name: str, exclude: str | None = None) -> bool:
    query = select(Project.id).where(Project.domain_id == domain_id, Project.name == name)
    if exclude is not None:
        query = query.where(Project.id != exclude)
    return session.scalar(query) is not None


def create_project(session: Session, ctx: RequestContext, spec: ProjectCreate) -> Project | Domain:
    """`is_domain`: a domain, made through the projects API (Keystone's projects acting as
    domains: no domain and no parent of their own)."""
    ctx.require_admin()
    if spec.is_domain:
        if spec.parent_id is not None or spec.domain_id is not None:
            raise BadRequest("A project acting as a domain has no domain_id and no parent_id.")
        _check_tags(spec.tags)
        _refuse_domain_extras(spec.extra())
        made = DomainCreate(name=spec.name, description=spec.description, enabled=spec.enabled)
        return create_domain(session, ctx, made)
    domain_id, parent = _parent_for(session, ctx, spec)
    tags = project_tags.validate_tags(spec.tags)
    if parent is not None and spec.enabled and not parent.enabled:
        raise Forbidden(f"Cannot enable project {spec.name} since it has disabled parents")
    if _project_name_taken(session, domain_id, spec.name):
        raise _duplicate("project", spec.name, domain_id)
    project = Project(
        id=uuid.uuid4().hex,
        name=spec.name,
        domain_id=domain_id,
        parent_id=parent.id if parent is not None else None,
        description=spec.description or "",
        enabled=spec.enabled,
        extra=spec.extra(),
        tags=tags,
    )
    session.add(project)
    _flush(session, "project", spec.name, domain_id)
    return project


def update_project(
    session: Session, ctx: RequestContext, project_id: str, update: ProjectUpdate
) -> Project | Domain:
    """A project acting as a domain is updated as that domain: its name, description and
    enabled only (no tags, no extras: 400). Neither kind changes domain, parent or kind; the
    values shown may be sent back."""
    ctx.require_admin()
    extra = update.extra()
    if not extra:
        _require_changes(update, "project")
    _not_null(update, "name", "enabled")
    domain = _as_domain(session, project_id)
    if domain is not None:
        _check_placement(update, domain_id=None, parent_id=None, is_domain=True)
        _check_tags(update.tags)
        _refuse_domain_extras(extra)
        fields = update.model_dump(include={"name", "description", "enabled"}, exclude_unset=True)
        return update_domain(session, ctx, project_id, DomainUpdate(**fields))
    project = require_project(session, project_id)
    _check_placement(
        update,
        domain_id=project.domain_id,
        parent_id=project.parent_id or project.domain_id,
        is_domain=False,
    )
    if "tags" in update.model_fields_set and update.tags is None:
        raise BadRequest("Invalid input for field 'tags': None is not of type 'array'.")
    if update.tags is not None:
        project.tags = project_tags.validate_tags(update.tags)
    if update.name is not None and update.name != project.name:
        if _project_name_taken(session, project.domain_id, update.name, exclude=project.id):
            raise _duplicate("project", update.name, project.domain_id)
        project.name = update.name
    if "description" in update.model_fields_set:
        project.description = update.description or ""
    if update.enabled is not None and update.enabled != project.enabled:
        _check_enabling(session, project, update.enabled)
        project.enabled = update.enabled
        if not update.enabled:
            revocation.revoke(session, project_id=project.id)
    if extra:
        project.extra = {**project.extra, **extra}  # a new dict: the JSON column sees the change
    _flush(session, "project", project.name, project.domain_id)
    return project


def _check_placement(
    update: ProjectUpdate, *, domain_id: str | None, parent_id: str | None, is_domain: bool
) -> None:
    """Keystone's refusals of an update that would move a project or change its kind."""
    fields = update.model_fields_set
    if "domain_id" in fields and update.domain_id != domain_id:
        raise BadRequest("Cannot change Domain ID.")
    if "parent_id" in fields and update.parent_id != parent_id:
        raise Forbidden("Update of `parent_id` is not allowed.")
    if "is_domain" in fields and update.is_domain != is_domain:
        raise BadRequest("Update of `is_domain` is not allowed.")


def _refuse_domain_extras(extra: dict[str, Any]) -> None:
    if extra:
        names = ", ".join(sorted(extra))
        raise BadRequest(f"A project acting as a domain keeps no additional attributes: {names}.")


def _check_enabling(session: Session, project: Project, enabled: bool) -> None:
    """Keystone's rules: no enabled project below a disabled one."""
    parents = grants.project_parents(session)
    if enabled:
        above = hierarchy.ancestors(project.id, parents)
        if above and session.scalar(select(Project.id).where(Project.id.in_(above), ~Project.enabled)):
            raise Forbidden(f"Cannot enable project {project.id} since it has disabled parents")
        return
    below = hierarchy.subtree(project.id, parents)
    if below and session.scalar(select(Project.id).where(Project.id.in_(below), Project.enabled)):
        raise Forbidden(f"Cannot disable project {project.id} since its subtree contains enabled projects.")


def delete_project(session: Session, ctx: RequestContext, project_id: str) -> None:
    """As Keystone (without `cascade`): only a leaf of the tree is deleted (403 otherwise)."""
    ctx.require_admin()
    if _as_domain(session, project_id) is not None:
        delete_domain(session, ctx, project_id)  # a domain, deleted as the project acting as it
        return
    project = require_project(session, project_id)
    if session.scalar(select(Project.id).where(Project.parent_id == project.id).limit(1)) is not None:
        raise Forbidden(
            f"Cannot delete the project {project.id} since it is not a leaf in the hierarchy. "
            "Use the cascade option if you want to delete a whole subtree."
        )
    _delete_project(session, project)


def _delete_project(session: Session, project: Project) -> None:
    grants.forget_target(session, grants.PROJECT, project.id)
    session.execute(delete(ApplicationCredential).where(ApplicationCredential.project_id == project.id))
    session.execute(delete(ProjectLimit).where(ProjectLimit.project_id == project.id))
    revocation.revoke(session, project_id=project.id)
    session.delete(project)
    session.flush()


# --- project tags ---------------------------------------------------------------------------


# A project acting as a domain has no tags (as /v3/domains: "Domain tags are not supported."):
# its list is empty and changing it is a 400.


def list_project_tags(session: Session, ctx: RequestContext, project_id: str) -> list[str]:
    if _as_domain(session, project_id) is not None:
        get_domain(session, ctx, project_id)
        return []
    return list(get_project(session, ctx, project_id).tags or [])


def _tagged_project(session: Session, project_id: str) -> Project:
    """The project whose tags change (a domain's: 400)."""
    if _as_domain(session, project_id) is not None:
        raise BadRequest(_NO_DOMAIN_TAGS)
    return require_project(session, project_id)


def check_project_tag(session: Session, ctx: RequestContext, project_id: str, tag: str) -> None:
    if tag not in list_project_tags(session, ctx, project_id):
        raise NotFound(f"Tag {tag} not found for project {project_id}.")


def replace_project_tags(session: Session, ctx: RequestContext, project_id: str, tags: Any) -> list[str]:
    """PUT /v3/projects/{id}/tags: the project's tags become these."""
    ctx.require_admin()
    project = _tagged_project(session, project_id)
    project.tags = project_tags.validate_tags(tags)
    session.flush()
    return list(project.tags)


def add_project_tag(session: Session, ctx: RequestContext, project_id: str, tag: str) -> list[str]:
    ctx.require_admin()
    project = _tagged_project(session, project_id)
    project.tags = project_tags.add_tag(list(project.tags or []), tag)
    session.flush()
    return list(project.tags)


def remove_project_tag(session: Session, ctx: RequestContext, project_id: str, tag: str) -> None:
    ctx.require_admin()
    project = _tagged_project(session, project_id)
    if tag not in (project.tags or []):
        raise NotFound(f"Tag {tag} not found for project {project_id}.")
    project.tags = [t for t in project.tags if t != tag]
    session.flush()


def clear_project_tags(session: Session, ctx: RequestContext, project_id: str) -> None:
    ctx.require_admin()
    _tagged_project(session, project_id).tags = []
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
        .where(Project.id.in_(grants.project_ids_of_user(session, user_id)))
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
    ctx.require_reader()
    query = select(User).order_by(User.name)
    if domain_id is not None:
        query = query.where(User.domain_id == domain_id)
    if name is not None:
        query = query.where(User.name == name)
    if enabled is not None:
        query = query.where(User.enabled == enabled)
    return list(session.scalars(query))


def get_user(session: Session, ctx: RequestContext, user_id: str) -> User:
    _require_self_or_admin(ctx, user_id)
    return require_user(session, user_id)


def _user_name_taken(session: Session, domain_id: str, name: str, exclude: str | None = None) -> bool:
    query = select(User.id).where(User.domain_id == domain_id, User.name == name)
    if exclude is not None:
        query = query.where(User.id != exclude)
    return session.scalar(query) is not None


def create_user(session: Session, ctx: RequestContext, spec: UserCreate) -> User:
    ctx.require_admin()
    domain_id = _domain_for(session, ctx, spec.domain_id)
    if spec.default_project_id is not None:
        require_project(session, spec.default_project_id)
    if _user_name_taken(session, domain_id, spec.name):
        raise _duplicate("user", spec.name, domain_id)
    user = User(
        id=uuid.uuid4().hex,
        name=spec.name,
        domain_id=domain_id,
        password_hash=hash_password(spec.password) if spec.password is not None else None,
        email=spec.email,
        description=spec.description or "",
        default_project_id=spec.default_project_id,
        enabled=spec.enabled,
        extra=spec.extra(),
    )
    session.add(user)
    _flush(session, "user", spec.name, domain_id)
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
        if _user_name_taken(session, user.domain_id, update.name, exclude=user.id):
            raise _duplicate("user", update.name, user.domain_id)
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
    if extra := update.extra():
        user.extra = {**(user.extra or {}), **extra}
    _flush(session, "user", user.name, user.domain_id)
    return user


def delete_user(session: Session, ctx: RequestContext, user_id: str) -> None:
    ctx.require_admin()
    _delete_user(session, require_user(session, user_id))


def _delete_user(session: Session, user: User) -> None:
    grants.forget_actor(session, grants.USER, user.id)
    session.execute(delete(ApplicationCredential).where(ApplicationCredential.user_id == user.id))
    session.execute(delete(Credential).where(Credential.user_id == user.id))
    session.execute(delete(GroupMembership).where(GroupMembership.user_id == user.id))
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


# --- groups ---------------------------------------------------------------------------------


class GroupCreate(_Input):
    name: Name
    domain_id: Id | None = None
    description: StrictStr | None = None


class GroupUpdate(_Input):
    name: Name | None = None
    domain_id: Id | None = None
    description: StrictStr | None = None


def require_group(session: Session, group_id: str) -> Group:
    group = session.get(Group, group_id)
    if group is None:
        raise NotFound(f"Could not find group: {group_id}.")
    return group


def members_of(session: Session, group_id: str) -> list[str]:
    return list(session.scalars(select(GroupMembership.user_id).where(GroupMembership.group_id == group_id)))


def list_groups(
    session: Session, ctx: RequestContext, *, name: str | None = None, domain_id: str | None = None
) -> list[Group]:
    ctx.require_reader()
    query = select(Group).order_by(Group.name)
    if name is not None:
        query = query.where(Group.name == name)
    if domain_id is not None:
        query = query.where(Group.domain_id == domain_id)
    return list(session.scalars(query))


def get_group(session: Session, ctx: RequestContext, group_id: str) -> Group:
    ctx.require_reader()
    return require_group(session, group_id)


def _group_name_taken(session: Session, domain_id: str, name: str, exclude: str | None = None) -> bool:
    query = select(Group.id).where(Group.domain_id == domain_id, Group.name == name)
    if exclude is not None:
        query = query.where(Group.id != exclude)
    return session.scalar(query) is not None


def create_group(session: Session, ctx: RequestContext, spec: GroupCreate) -> Group:
    ctx.require_admin()
    domain_id = _domain_for(session, ctx, spec.domain_id)
    if _group_name_taken(session, domain_id, spec.name):
        raise _duplicate("group", spec.name, domain_id)
    group = Group(
        id=uuid.uuid4().hex, name=spec.name, domain_id=domain_id, description=spec.description or ""
    )
    session.add(group)
    _flush(session, "group", spec.name, domain_id)
    return group


def update_group(session: Session, ctx: RequestContext, group_id: str, update: GroupUpdate) -> Group:
    ctx.require_admin()
    _require_changes(update, "group")
    _not_null(update, "name")
    group = require_group(session, group_id)
    if "domain_id" in update.model_fields_set and update.domain_id != group.domain_id:
        raise BadRequest("Cannot change Domain ID.")
    if update.name is not None and update.name != group.name:
        if _group_name_taken(session, group.domain_id, update.name, exclude=group.id):
            raise _duplicate("group", update.name, group.domain_id)
        group.name = update.name
    if "description" in update.model_fields_set:
        group.description = update.description or ""
    _flush(session, "group", group.name, group.domain_id)
    return group


def delete_group(session: Session, ctx: RequestContext, group_id: str) -> None:
    ctx.require_admin()
    _delete_group(session, require_group(session, group_id))


def _delete_group(session: Session, group: Group) -> None:
    """Its members' tokens end: they may carry roles granted to the group."""
    for user_id in members_of(session, group.id):
        revocation.revoke(session, user_id=user_id)
    grants.forget_actor(session, grants.GROUP, group.id)
    session.execute(delete(GroupMembership).where(GroupMembership.group_id == group.id))
    session.delete(group)
    session.flush()


def add_member(session: Session, ctx: RequestContext, group_id: str, user_id: str) -> None:
    """PUT /v3/groups/{g}/users/{u}: idempotent."""
    ctx.require_admin()
    require_group(session, group_id)
    require_user(session, user_id)
    if session.get(GroupMembership, (group_id, user_id)) is None:
        try:
            with session.begin_nested():
                session.add(GroupMembership(group_id=group_id, user_id=user_id))
        except IntegrityError:
            pass  # added concurrently: the outcome is the same


def _membership_not_found(group_id: str, user_id: str) -> NotFound:
    return NotFound(f"User {user_id} is not a member of group {group_id}.")


def check_member(session: Session, ctx: RequestContext, group_id: str, user_id: str) -> None:
    _require_self_or_admin(ctx, user_id)
    require_group(session, group_id)
    require_user(session, user_id)
    if session.get(GroupMembership, (group_id, user_id)) is None:
        raise _membership_not_found(group_id, user_id)


def remove_member(session: Session, ctx: RequestContext, group_id: str, user_id: str) -> None:
    """The user's tokens end: they may carry roles granted to the group."""
    ctx.require_admin()
    require_group(session, group_id)
    require_user(session, user_id)
    membership = session.get(GroupMembership, (group_id, user_id))
    if membership is None:
        raise _membership_not_found(group_id, user_id)
    session.delete(membership)
    revocation.revoke(session, user_id=user_id)
    session.flush()


def list_group_users(session: Session, ctx: RequestContext, group_id: str) -> list[User]:
    ctx.require_reader()
    require_group(session, group_id)
    query = (
        select(User)
        .join(GroupMembership, GroupMembership.user_id == User.id)
        .where(GroupMembership.group_id == group_id)
        .order_by(User.name)
    )
    return list(session.scalars(query))


def list_user_groups(session: Session, ctx: RequestContext, user_id: str) -> list[Group]:
    _require_self_or_admin(ctx, user_id)
    require_user(session, user_id)
    query = (
        select(Group)
        .join(GroupMembership, GroupMembership.group_id == Group.id)
        .where(GroupMembership.user_id == user_id)
        .order_by(Group.name)
    )
    return list(session.scalars(query))


# --- roles ----------------------------------------------------------------------------------


def list_roles(
    session: Session, ctx: RequestContext, *, name: str | None = None, domain_id: str | None = None
) -> list[Role]:
    """Every authenticated user may read the roles: the global ones, or with `domain_id` those
    of that domain (as Keystone)."""
    query = select(Role).where(Role.domain_id == (domain_id or GLOBAL_ROLE)).order_by(Role.name)
    if name is not None:
        query = query.where(Role.name == name)
    return list(session.scalars(query))


def get_role(session: Session, ctx: RequestContext, role_id: str) -> Role:
    return require_role(session, role_id)


def _role_name_taken(session: Session, name: str, domain_id: str, exclude: str | None = None) -> bool:
    query = select(Role.id).where(Role.name == name, Role.domain_id == domain_id)
    if exclude is not None:
        query = query.where(Role.id != exclude)
    return session.scalar(query) is not None


def create_role(session: Session, ctx: RequestContext, spec: RoleCreate) -> Role:
    """A global role, or with `domain_id` a domain-specific one (named uniquely in its domain)."""
    ctx.require_admin()
    domain_id = GLOBAL_ROLE
    if spec.domain_id is not None:
        domain_id = require_domain(session, spec.domain_id).id
    if _role_name_taken(session, spec.name, domain_id):
        raise _duplicate("role", spec.name, domain_id or None)
    role = Role(id=uuid.uuid4().hex, name=spec.name, domain_id=domain_id, description=spec.description or "")
    session.add(role)
    _flush(session, "role", spec.name, domain_id or None)
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
        taken = _role_name_taken(session, update.name, role.domain_id, exclude=role.id)
        if taken or (update.name in IMMUTABLE_ROLES and role.domain_id == GLOBAL_ROLE):
            raise _duplicate("role", update.name, role.domain_id or None)
        role.name = update.name
    if "description" in update.model_fields_set:
        role.description = update.description or ""
    _flush(session, "role", role.name)
    return role


def delete_role(session: Session, ctx: RequestContext, role_id: str) -> None:
    """Tokens carry their roles' names: every user holding, directly or through a group, a
    role that reaches this one (itself included) has their tokens revoked with it."""
    ctx.require_admin()
    role = require_role(session, role_id)
    _require_mutable(role, "delete")
    holders = _users_reaching(session, role.id)
    session.execute(delete(Grant).where(Grant.role_id == role.id))
    session.delete(role)
    for user_id in sorted(holders):
        revocation.revoke(session, user_id=user_id)
    session.flush()


def _users_reaching(session: Session, role_id: str) -> set[str]:
    """The users holding a role whose inference closure contains `role_id`."""
    graph = inference.rules(session)
    reaching = [rid for rid in session.scalars(select(Role.id)) if role_id in inference.closure([rid], graph)]
    return set(grants.users_holding(session, reaching))


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
    if implied.name in inference.PROHIBITED_IMPLIED and implied.domain_id == GLOBAL_ROLE:
        raise Forbidden(f"{implied.name} is not a permitted implied role.")
    if prior.domain_id == GLOBAL_ROLE and implied.domain_id != GLOBAL_ROLE:
        raise Forbidden(
            f"{implied.id} is not a permitted implied role: a global role cannot imply a domain one."
        )
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
    """Tokens carry their roles: those of every user holding, directly or through a group, a
    role that reached the prior role are revoked, since they may list what no longer follows."""
    ctx.require_admin()
    rule = session.get(ImpliedRole, (prior_id, implied_id))
    if rule is None:
        require_role(session, prior_id)
        require_role(session, implied_id)
        raise _inference_not_found(prior_id, implied_id)
    holders = _users_reaching(session, prior_id)
    session.delete(rule)
    for user_id in sorted(holders):
        revocation.revoke(session, user_id=user_id)
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


@dataclass(frozen=True)
class Target:
    """Where a grant applies: a project, a domain, or the system (`entity` None)."""

    type: str
    id: str
    entity: Project | Domain | None = None


@dataclass(frozen=True)
class Actor:
    type: str  # grants.USER | grants.GROUP
    entity: User | Group

    @property
    def id(self) -> str:
        return self.entity.id


def target_of(session: Session, target_type: str, target_id: str) -> Target:
    if target_type == grants.PROJECT:
        return Target(target_type, target_id, require_project(session, target_id))
    if target_type == grants.DOMAIN:
        return Target(target_type, target_id, require_domain(session, target_id))
    return Target(grants.SYSTEM, grants.SYSTEM_ALL)


def actor_of(session: Session, actor_type: str, actor_id: str) -> Actor:
    if actor_type == grants.GROUP:
        return Actor(actor_type, require_group(session, actor_id))
    return Actor(grants.USER, require_user(session, actor_id))


def _resolve(
    session: Session, target_type: str, target_id: str, actor_type: str, actor_id: str, role_id: str
) -> tuple[Target, Actor, Role]:
    return (
        target_of(session, target_type, target_id),
        actor_of(session, actor_type, actor_id),
        require_role(session, role_id),
    )


def grant_role(
    session: Session,
    ctx: RequestContext,
    target_type: str,
    target_id: str,
    actor_type: str,
    actor_id: str,
    role_id: str,
    inherited: bool = False,
) -> None:
    """PUT /v3/{projects,domains}/{t}/{users,groups}/{a}/roles/{r} and /v3/system/...: idempotent.
    `inherited`: the OS-INHERIT grant `.../inherited_to_projects` (grants.INHERITED)."""
    ctx.require_admin()
    target, actor, role = _resolve(session, target_type, target_id, actor_type, actor_id, role_id)
    _check_role_domain(target, role)
    grants.add(session, actor.type, actor.id, _stored(target, inherited), target.id, role.id)


def _check_role_domain(target: Target, role: Role) -> None:
    """A domain-specific role is granted only within its domain (Keystone's 403)."""
    if role.domain_id == GLOBAL_ROLE:
        return
    domain_id = target.entity.domain_id if isinstance(target.entity, Project) else target.id
    if target.type == grants.SYSTEM or domain_id != role.domain_id:
        raise Forbidden(
            f"{target.type.capitalize()} {target.id} must be in the same domain as the role "
            f"{role.id} being assigned."
        )


def _stored(target: Target, inherited: bool) -> str:
    """The target type a grant is stored with."""
    return grants.INHERITED[target.type] if inherited else target.type


def _assignment_not_found(target_id: str, actor_id: str, role_id: str) -> NotFound:
    return NotFound(
        f"Could not find role assignment with role: {role_id}, user or group: {actor_id}, "
        f"project, domain, or system: {target_id}."
    )


def check_role(
    session: Session,
    ctx: RequestContext,
    target_type: str,
    target_id: str,
    actor_type: str,
    actor_id: str,
    role_id: str,
    inherited: bool = False,
) -> None:
    if actor_type == grants.USER:
        _require_self_or_admin(ctx, actor_id)
    else:
        ctx.require_reader()
    target, actor, role = _resolve(session, target_type, target_id, actor_type, actor_id, role_id)
    if not grants.exists(session, actor.type, actor.id, _stored(target, inherited), target.id, role.id):
        raise _assignment_not_found(target_id, actor_id, role_id)


def _revoke_tokens_of(session: Session, actor: Actor, target: Target, inherited: bool = False) -> None:
    """The tokens that may carry a grant just removed: the user's (every member's) on the target;
    for the system or an inherited grant, every token of theirs (system tokens have no target id
    to match; an inherited grant holds on other projects)."""
    users = [actor.id] if actor.type == grants.USER else members_of(session, actor.id)
    for user_id in users:
        if target.type == grants.SYSTEM or inherited:
            revocation.revoke(session, user_id=user_id)
        else:
            revocation.revoke(session, user_id=user_id, project_id=target.id)


def revoke_role(
    session: Session,
    ctx: RequestContext,
    target_type: str,
    target_id: str,
    actor_type: str,
    actor_id: str,
    role_id: str,
    inherited: bool = False,
) -> None:
    ctx.require_admin()
    target, actor, role = _resolve(session, target_type, target_id, actor_type, actor_id, role_id)
    if not grants.remove(session, actor.type, actor.id, _stored(target, inherited), target.id, role.id):
        raise _assignment_not_found(target_id, actor_id, role_id)
    _revoke_tokens_of(session, actor, target, inherited)


def roles_granted(
    session: Session,
    ctx: RequestContext,
    target_type: str,
    target_id: str,
    actor_type: str,
    actor_id: str,
    inherited: bool = False,
) -> list[Role]:
    """GET /v3/{projects,domains}/{t}/{users,groups}/{a}/roles: the roles granted directly
    (`inherited`: those granted inherited to projects, OS-INHERIT's listing)."""
    if actor_type == grants.USER:
        _require_self_or_admin(ctx, actor_id)
    else:
        ctx.require_reader()
    target, actor = target_of(session, target_type, target_id), actor_of(session, actor_type, actor_id)
    query = (
        select(Role)
        .join(Grant, Grant.role_id == Role.id)
        .where(
            Grant.actor_type == actor.type,
            Grant.actor_id == actor.id,
            Grant.target_type == _stored(target, inherited),
            Grant.target_id == target.id,
        )
        .order_by(Role.name)
    )
    return list(session.scalars(query))


def roles_of_user_on_project(
    session: Session, ctx: RequestContext, project_id: str, user_id: str
) -> list[Role]:
    return roles_granted(session, ctx, grants.PROJECT, project_id, grants.USER, user_id)


@dataclass(frozen=True)
class Assignment:
    actor: Actor
    target: Target
    role: Role
    # In an effective listing, the assigned role this one is implied by, and the group a user's
    # assignment comes through.
    prior_role: Role | None = None
    via_group: Group | None = None
    # Granted inherited to the projects of the target (OS-INHERIT); in an effective listing,
    # the domain it is inherited from.
    inherited: bool = False
    from_domain: str | None = None
    from_project: str | None = None


@dataclass(frozen=True)
class AssignmentFilter:
    user_id: str | None = None
    group_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    system: bool = False
    role_id: str | None = None
    # Keystone's `effective`: group assignments expanded to their members, implied roles listed.
    effective: bool = False


def _with_implied(session: Session, rows: list[Assignment]) -> list[Assignment]:
    """Each assignment, followed by one per role its role implies (transitively)."""
    graph = inference.rules(session)
    if not graph:
        return rows
    roles = {r.id: r for r in session.scalars(select(Role))}
    out: list[Assignment] = []
    seen: set[tuple[str, str, str, str]] = set()
    for a in rows:
        for rid in [a.role.id, *sorted(inference.closure([a.role.id], graph) - {a.role.id})]:
            key = (a.actor.id, a.target.type, a.target.id, rid)
            if key not in seen:
                seen.add(key)
                prior = None if rid == a.role.id else a.role
                out.append(replace(a, role=roles[rid], prior_role=prior))
    return out


def _expand_groups(session: Session, rows: list[Assignment], user_id: str | None) -> list[Assignment]:
    """Group assignments replaced by one per member (only `user_id`'s when filtered)."""
    out: list[Assignment] = []
    for a in rows:
        if a.actor.type != grants.GROUP:
            out.append(a)
            continue
        query = (
            select(User)
            .join(GroupMembership, GroupMembership.user_id == User.id)
            .where(GroupMembership.group_id == a.actor.id)
        )
        if user_id is not None:
            query = query.where(User.id == user_id)
        for user in session.scalars(query.order_by(User.name)):
            out.append(replace(a, actor=Actor(grants.USER, user), via_group=a.actor.entity))  # type: ignore[arg-type]
    return out


@dataclass(frozen=True)
class AssignmentListing:
    rows: list[Assignment]
    domain_names: dict[str, str]  # id -> name, for `include_names`


def list_assignments(session: Session, ctx: RequestContext, flt: AssignmentFilter) -> AssignmentListing:
    """GET /v3/role_assignments. Admins and system readers list everything; others only their
    own assignments."""
    if not ctx.can_read_everything and flt.user_id != ctx.user_id:
        raise Forbidden(_POLICY)
    query = select(Grant)
    if flt.user_id is not None:
        actor = (Grant.actor_type == grants.USER) & (Grant.actor_id == flt.user_id)
        if flt.effective:
            groups = select(GroupMembership.group_id).where(GroupMembership.user_id == flt.user_id)
            actor = actor | ((Grant.actor_type == grants.GROUP) & Grant.actor_id.in_(groups))
        query = query.where(actor)
    if flt.group_id is not None:
        query = query.where(Grant.actor_type == grants.GROUP, Grant.actor_id == flt.group_id)
    if flt.project_id is not None:
        on_project = [grants.PROJECT, grants.INHERITED[grants.PROJECT]]
        scope = Grant.target_type.in_(on_project) & (Grant.target_id == flt.project_id)
        if flt.effective:
            domain = select(Project.domain_id).where(Project.id == flt.project_id).scalar_subquery()
            scope = scope | (
                (Grant.target_type == grants.INHERITED[grants.DOMAIN]) & (Grant.target_id == domain)
            )
            above = grants.ancestors_of(session, flt.project_id)
            if above:
                scope = scope | (
                    (Grant.target_type == grants.INHERITED[grants.PROJECT]) & Grant.target_id.in_(above)
                )
        query = query.where(scope)
    if flt.domain_id is not None:
        # An effective listing turns inherited grants into project ones, outside this scope.
        on_domain = [grants.DOMAIN] + ([] if flt.effective else [grants.INHERITED[grants.DOMAIN]])
        query = query.where(Grant.target_type.in_(on_domain), Grant.target_id == flt.domain_id)
    if flt.system:
        query = query.where(Grant.target_type == grants.SYSTEM)
    if flt.role_id is not None and not flt.effective:
        query = query.where(Grant.role_id == flt.role_id)
    rows = _load(session, list(session.scalars(query)))
    if flt.effective:
        rows = _inherit(session, rows, flt.project_id)
        rows = _with_implied(session, _expand_groups(session, rows, flt.user_id))
        # domain-specific roles only lend what they imply (never in a token themselves)
        rows = [a for a in rows if a.role.domain_id == GLOBAL_ROLE]
        if flt.role_id is not None:
            rows = [a for a in rows if a.role.id == flt.role_id]
    names = {domain_id: name for domain_id, name in session.execute(select(Domain.id, Domain.name))}
    return AssignmentListing(rows, names)


def _inherit(session: Session, rows: list[Assignment], project_id: str | None) -> list[Assignment]:
    """An effective listing's rows: a grant inherited from a domain becomes one on each of the
    domain's projects, one inherited from a project one on each project of its subtree (only
    `project_id` when filtered)."""
    out: list[Assignment] = []
    parents: dict[str, str | None] | None = None
    for a in rows:
        if not a.inherited:
            out.append(a)
            continue
        if a.target.type == grants.DOMAIN:
            query = select(Project).where(Project.domain_id == a.target.id)
        else:
            parents = grants.project_parents(session) if parents is None else parents
            query = select(Project).where(Project.id.in_(hierarchy.subtree(a.target.id, parents)))
        if project_id is not None:
            query = query.where(Project.id == project_id)
        from_domain = a.target.id if a.target.type == grants.DOMAIN else None
        from_project = a.target.id if a.target.type == grants.PROJECT else None
        for project in session.scalars(query.order_by(Project.name)):
            target = Target(grants.PROJECT, project.id, project)
            out.append(
                Assignment(
                    a.actor,
                    target,
                    a.role,
                    via_group=a.via_group,
                    from_domain=from_domain,
                    from_project=from_project,
                )
            )
    return out


def _load(session: Session, found: list[Grant]) -> list[Assignment]:
    """The grants' actors, targets and roles, read by kind (a handful of statements)."""

    def by_id(model: Any, ids: set[str]) -> dict[str, Any]:
        return (
            {e.id: e for e in session.scalars(select(model).where(model.id.in_(sorted(ids))))} if ids else {}
        )

    users = by_id(User, {g.actor_id for g in found if g.actor_type == grants.USER})
    groups = by_id(Group, {g.actor_id for g in found if g.actor_type == grants.GROUP})

    def plain(target_type: str) -> str:
        return grants.INHERITED_TO.get(target_type, target_type)

    projects = by_id(Project, {g.target_id for g in found if plain(g.target_type) == grants.PROJECT})
    domains = by_id(Domain, {g.target_id for g in found if plain(g.target_type) == grants.DOMAIN})
    roles = by_id(Role, {g.role_id for g in found})
    out = []
    for g in found:
        actor = users.get(g.actor_id) if g.actor_type == grants.USER else groups.get(g.actor_id)
        kind = plain(g.target_type)
        target = {grants.PROJECT: projects, grants.DOMAIN: domains}.get(kind, {}).get(g.target_id)
        if actor is None or (target is None and kind != grants.SYSTEM):
            continue  # its actor or target is being deleted concurrently
        out.append(
            Assignment(
                Actor(g.actor_type, actor),
                Target(kind, g.target_id, target),
                roles[g.role_id],
                inherited=g.target_type in grants.INHERITED_TO,
            )
        )
    out.sort(
        key=lambda a: (a.actor.entity.name, a.target.type, getattr(a.target.entity, "name", ""), a.role.name)
    )
    return out
