"""Role assignments (grants) of users and groups on projects, domains and the system, and the
roles a user holds on a target through them.

Invariant: `assigned_role_ids(user, target)` is every role granted on that target to the user
directly or to a group the user belongs to (for a project, also those granted inherited to the
projects of its domain, or to the subtree of one of its ancestors, OS-INHERIT), read in one
statement once the project's ancestors are known; `effective_roles` adds the
implied ones (kumo.identity.inference). A token is issued with its effective roles, so
validating one reads none of this.
"""

from __future__ import annotations

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from kumo.identity import hierarchy, inference
from kumo.identity.models import Grant, GroupMembership, Project

USER, GROUP = "user", "group"
PROJECT, DOMAIN, SYSTEM = "project", "domain", "system"
SYSTEM_ALL = "all"  # the one system target, Keystone's `system: {all: true}`
# OS-INHERIT: a grant "inherited to projects" is stored with a target type of its own: on a
# domain it holds on every project of the domain (not on the domain); on a project, on the
# project's subtree (not on the project).
INHERITED = {DOMAIN: "idomain", PROJECT: "iproject"}
INHERITED_TO = {stored: plain for plain, stored in INHERITED.items()}


def _key(actor_type: str, actor_id: str, target_type: str, target_id: str, role_id: str) -> tuple[str, ...]:
    return (actor_type, actor_id, target_type, target_id, role_id)


def add(
    session: Session, actor_type: str, actor_id: str, target_type: str, target_id: str, role_id: str
) -> None:
    """Idempotent, also against a concurrent grant of the same."""
    if session.get(Grant, _key(actor_type, actor_id, target_type, target_id, role_id)) is not None:
        return
    try:
        with session.begin_nested():
            session.add(
                Grant(
                    actor_type=actor_type,
                    actor_id=actor_id,
                    target_type=target_type,
                    target_id=target_id,
                    role_id=role_id,
                )
            )
    except IntegrityError:
        pass  # granted concurrently: the outcome is the same


def exists(
    session: Session, actor_type: str, actor_id: str, target_type: str, target_id: str, role_id: str
) -> bool:
    return session.get(Grant, _key(actor_type, actor_id, target_type, target_id, role_id)) is not None


def remove(
    session: Session, actor_type: str, actor_id: str, target_type: str, target_id: str, role_id: str
) -> bool:
    """Whether there was such a grant."""
    grant = session.get(Grant, _key(actor_type, actor_id, target_type, target_id, role_id))
    if grant is None:
        return False
    session.delete(grant)
    session.flush()
    return True


def _actor_is(user_id: str) -> ColumnElement[bool]:
    """The grant's actor is the user, or a group the user belongs to."""
    groups = select(GroupMembership.group_id).where(GroupMembership.user_id == user_id)
    return or_(
        (Grant.actor_type == USER) & (Grant.actor_id == user_id),
        (Grant.actor_type == GROUP) & Grant.actor_id.in_(groups),
    )


def project_parents(session: Session) -> dict[str, str | None]:
    """Every project's parent project (None: top-level), the map kumo.identity.hierarchy reads."""
    return {pid: parent for pid, parent in session.execute(select(Project.id, Project.parent_id))}


def ancestors_of(session: Session, project_id: str) -> list[str]:
    """The project's parent, grandparent, … (a handful of reads: trees are at most
    kumo.identity.hierarchy.MAX_DEPTH deep)."""
    parents = {project_id: session.scalar(select(Project.parent_id).where(Project.id == project_id))}
    current = parents[project_id]
    while current is not None and current not in parents:
        parents[current] = session.scalar(select(Project.parent_id).where(Project.id == current))
        current = parents[current]
    return hierarchy.ancestors(project_id, parents)


def _on(session: Session, target_type: str, target_id: str) -> ColumnElement[bool]:
    """Grants that hold on the target: made on it, and for a project those inherited from its
    domain or from one of its ancestors."""
    on = (Grant.target_type == target_type) & (Grant.target_id == target_id)
    if target_type == PROJECT:
        domain = select(Project.domain_id).where(Project.id == target_id).scalar_subquery()
        on = on | ((Grant.target_type == INHERITED[DOMAIN]) & (Grant.target_id == domain))
        above = ancestors_of(session, target_id)
        if above:
            on = on | ((Grant.target_type == INHERITED[PROJECT]) & Grant.target_id.in_(above))
    return on


def assigned_role_ids(session: Session, user_id: str, target_type: str, target_id: str) -> list[str]:
    query = select(Grant.role_id).where(_on(session, target_type, target_id), _actor_is(user_id))
    return list(session.scalars(query.distinct()))


def effective_roles(
    session: Session, user_id: str, target_type: str, target_id: str
) -> list[tuple[str, str]]:
    """(id, name) of the user's roles on the target: assigned, through groups, and implied."""
    return inference.effective(session, assigned_role_ids(session, user_id, target_type, target_id))


def project_ids_of_user(session: Session, user_id: str) -> list[str]:
    """The projects the user holds a role on, directly or through a group."""
    query = select(Grant.target_id).where(Grant.target_type == PROJECT, _actor_is(user_id)).distinct()
    inherited = select(Grant.target_id).where(Grant.target_type == INHERITED[DOMAIN], _actor_is(user_id))
    via_domains = select(Project.id).where(Project.domain_id.in_(inherited))
    found = set(session.scalars(query)) | set(session.scalars(via_domains))
    trees = set(
        session.scalars(
            select(Grant.target_id).where(Grant.target_type == INHERITED[PROJECT], _actor_is(user_id))
        )
    )
    if trees:
        parents = project_parents(session)
        for top in trees:
            found.update(hierarchy.subtree(top, parents))
    return sorted(found)


def domain_ids_of_user(session: Session, user_id: str) -> list[str]:
    """The domains the user holds a role on, directly or through a group (grants inherited to
    a domain's projects give none on the domain)."""
    query = select(Grant.target_id).where(Grant.target_type == DOMAIN, _actor_is(user_id)).distinct()
    return sorted(session.scalars(query))


def holds_system_role(session: Session, user_id: str) -> bool:
    query = select(Grant.role_id).where(Grant.target_type == SYSTEM, _actor_is(user_id)).limit(1)
    return session.scalar(query) is not None


def users_holding(session: Session, role_ids: list[str]) -> list[str]:
    """Every user granted one of the roles anywhere, directly or through a group."""
    if not role_ids:
        return []
    direct = select(Grant.actor_id).where(Grant.actor_type == USER, Grant.role_id.in_(role_ids))
    via_groups = select(GroupMembership.user_id).where(
        GroupMembership.group_id.in_(
            select(Grant.actor_id).where(Grant.actor_type == GROUP, Grant.role_id.in_(role_ids))
        )
    )
    return sorted(set(session.scalars(direct)) | set(session.scalars(via_groups)))


def forget_actor(session: Session, actor_type: str, actor_id: str) -> None:
    session.execute(delete(Grant).where(Grant.actor_type == actor_type, Grant.actor_id == actor_id))


def forget_target(session: Session, target_type: str, target_id: str) -> None:
    """Every grant on the target, inherited ones included."""
    types = [target_type] + ([INHERITED[target_type]] if target_type in INHERITED else [])
    session.execute(delete(Grant).where(Grant.target_type.in_(types), Grant.target_id == target_id))
