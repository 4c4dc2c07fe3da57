"""Idempotent bootstrap: roles, the admin project and user, and a demo project and user."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.identity import lockout, revocation
from kumo.identity.models import ImpliedRole, Project, Role, RoleAssignment, User
from kumo.identity.passwords import hash_password, verify_password

ROLE_NAMES = ("admin", "member", "reader")
# keystone-manage bootstrap's chain: admin implies member, member implies reader.
IMPLIED_CHAIN = (("admin", "member"), ("member", "reader"))


def ensure_role(session: Session, name: str) -> Role:
    role = session.scalar(select(Role).where(Role.name == name))
    if role is None:
        role = Role(id=uuid.uuid4().hex, name=name)
        session.add(role)
        session.flush()
    return role


def ensure_project(session: Session, name: str, description: str = "") -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        project = Project(id=uuid.uuid4().hex, name=name, description=description)
        session.add(project)
        session.flush()
    return project


def ensure_user(session: Session, name: str, password: str, project: Project) -> User:
    """The user with this password, unlocked. As keystone-manage bootstrap, a new password for
    an existing user revokes the tokens it held; running again with the same one changes none."""
    user = session.scalar(select(User).where(User.name == name))
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


def grant(session: Session, user: User, project: Project, role: Role) -> None:
    if session.get(RoleAssignment, (user.id, project.id, role.id)) is None:
        session.add(RoleAssignment(user_id=user.id, project_id=project.id, role_id=role.id))
        session.flush()


def bootstrap(session: Session, admin_password: str, demo_password: str | None = None) -> None:
    roles = {name: ensure_role(session, name) for name in ROLE_NAMES}
    for prior, implied in IMPLIED_CHAIN:
        ensure_implied(session, roles[prior], roles[implied])
    admin_project = ensure_project(session, "admin", "Bootstrap project for the cloud admin")
    admin = ensure_user(session, "admin", admin_password, admin_project)
    grant(session, admin, admin_project, roles["admin"])
    if demo_password is not None:
        demo_project = ensure_project(session, "demo", "Demo project")
        demo = ensure_user(session, "demo", demo_password, demo_project)
        grant(session, demo, demo_project, roles["member"])
        grant(session, admin, demo_project, roles["admin"])
