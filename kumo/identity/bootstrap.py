"""Idempotent bootstrap: roles, the admin project and user, and a demo project and user."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.identity import grants, lockout, revocation
from kumo.identity.models import GLOBAL_ROLE, Domain, ImpliedRole, Project, Role, User
from kumo.identity.passwords import hash_password, verify_password

ROLE_NAMES = ("admin", "manager", "member", "reader", "service")
# keystone-manage bootstrap's chain (2024.1 on): admin implies manager, manager implies member,
# member implies reader; `service` (for services' own users) implies nothing. The rule admin
# implies member of older bootstraps is removed, as Keystone's bootstrap does.
IMPLIED_CHAIN = (("admin", "manager"), ("manager", "member"), ("member", "reader"))
OUTDATED_CHAIN = (("admin", "member"),)


def ensure_role(session: Session, name: str) -> Role:
    role = session.scalar(select(Role).where(Role.name == name, Role.domain_id == GLOBAL_ROLE))
    if role is None:
        role = Role(id=uuid.uuid4().hex, name=name)
        session.add(role)
        session.flush()
    return role


def ensure_project(session: Session, name: str, description: str = "") -> Project:
    project = session.scalar(select(Project).where(Project.name == name, Project.domain_id == "default"))
    if project is None:
        project = Project(id=uuid.uuid4().hex, name=name, description=description)
        session.add(project)
        session.flush()
    return project


def ensure_user(session: Session, name: str, password: str, project: Project) -> User:
    """The user with this password, unlocked. As keystone-manage bootstrap, a new password for
    an existing user revokes the tokens it held; running again with the same one changes none."""
    user = session.scalar(select(User).where(User.name == name, User.domain_id == "default"))
    if user is None:
        user = User(id=uuid.uuid4().hex, name=name, default_project_id=project.id)
        session.add(user)
        user.password_hash = hash_password(password)
    elif not verify_password(password, user.password_hash):
        user.password_hash = hash_password(password)
        revocation.revoke(session, user_id=user.id)
    session.flush()
    lockout.reset(session, user.id)
    return user


def ensure_implied(session: Session, prior: Role, implied: Role) -> None:
    if session.get(ImpliedRole, (prior.id, implied.id)) is None:
        session.add(ImpliedRole(prior_role_id=prior.id, implied_role_id=implied.id))
        session.flush()


def forget_implied(session: Session, prior: Role, implied: Role) -> None:
    rule = session.get(ImpliedRole, (prior.id, implied.id))
    if rule is not None:
        session.delete(rule)
        session.flush()


def ensure_default_domain(session: Session) -> Domain:
    domain = session.get(Domain, "default")
    if domain is None:
        domain = Domain(id="default", name="Default", description="The default domain")
        session.add(domain)
        session.flush()
    return domain


def grant(session: Session, user: User, project: Project, role: Role) -> None:
    grants.add(session, grants.USER, user.id, grants.PROJECT, project.id, role.id)


def bootstrap(session: Session, admin_password: str, demo_password: str | None = None) -> None:
    ensure_default_domain(session)
    roles = {name: ensure_role(session, name) for name in ROLE_NAMES}
    for prior, implied in IMPLIED_CHAIN:
        ensure_implied(session, roles[prior], roles[implied])
    for prior, implied in OUTDATED_CHAIN:
        forget_implied(session, roles[prior], roles[implied])
    admin_project = ensure_project(session, "admin", "Bootstrap project for the cloud admin")
    admin = ensure_user(session, "admin", admin_password, admin_project)
    grant(session, admin, admin_project, roles["admin"])
    # As keystone-manage bootstrap: the admin is also the system's admin.
    grants.add(session, grants.USER, admin.id, grants.SYSTEM, grants.SYSTEM_ALL, roles["admin"].id)
    if demo_password is not None:
        demo_project = ensure_project(session, "demo", "Demo project")
        demo = ensure_user(session, "demo", demo_password, demo_project)
        grant(session, demo, demo_project, roles["member"])
        grant(session, admin, demo_project, roles["admin"])
