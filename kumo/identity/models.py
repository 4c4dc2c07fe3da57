"""Identity tables: domains, projects, users, roles, grants (role assignments), implied roles,
revoked tokens, failed logins."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db import Base, utcnow


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[str] = mapped_column(String(64), default="default")
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # attributes beyond Keystone's own, given at create or update and shown back as top-level
    # fields of the project (Keystone's `extra`: `openstack project create --property k=v`)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    # A sub-project's parent project; None for a top-level project (whose parent is its domain).
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(String(64), default="default")
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    default_project_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # Attributes Keystone does not know, kept and shown as given (Keystone's `extra`).
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")


GLOBAL_ROLE = ""  # a role's domain_id when it belongs to no domain (Keystone's `<<null>>`)


class Role(Base):
    """A role; a domain-specific role (`domain_id` set) is named uniquely within its domain,
    global roles among themselves."""

    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("name", "domain_id"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(String(64), default=GLOBAL_ROLE, server_default="")
    description: Mapped[str] = mapped_column(Text, default="")


class Domain(Base):
    """A Keystone domain: the namespace of projects, users and groups (names are unique within
    one). `default` always exists (kumo bootstrap); a domain is deleted only once disabled."""

    __tablename__ = "domains"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Group(Base):
    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(String(64), default="default")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class GroupMembership(Base):
    __tablename__ = "group_memberships"
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Grant(Base):
    """A role assignment: an actor (a user or a group) holds a role on a target (a project, a
    domain, or the system, whose target id is "all"). Keystone's `assignment` and
    `system_assignment` tables in one. Actors and targets are polymorphic, so whatever deletes
    a user, group, project or domain deletes its grants (kumo.identity.grants)."""

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_target", "target_type", "target_id"),)
    actor_type: Mapped[str] = mapped_column(String(8), primary_key=True)  # user | group
    actor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target_type: Mapped[str] = mapped_column(String(8), primary_key=True)  # project | domain | system
    target_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True)


class RevokedToken(Base):
    __tablename__ = "revoked_tokens"
    audit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)


class RevocationEvent(Base):
    """Tokens of a user, a project (or domain: `project_id` holds a token's scope target), a
    user on a project, or an application credential issued at or before a moment are no longer
    valid (a user, project or domain deleted or disabled, a role revoked, a credential
    deleted)."""

    __tablename__ = "revocation_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    app_cred_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    issued_before: Mapped[dt.datetime] = mapped_column(DateTime, index=True)


class AuthFailure(Base):
    """Consecutive failed logins of one login subject (Keystone's failed_auth_count and
    failed_auth_at): a user's id, or the id a login gave or was shown for a user that does not
    exist, so that unknown users are counted and locked exactly like real ones. Written only
    while a lockout is configured (kumo.identity.lockout)."""

    __tablename__ = "auth_failures"
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed_auth_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_auth_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)


class ImpliedRole(Base):
    """A role inference rule: whoever holds `prior_role_id` on a target also holds
    `implied_role_id` there (and, transitively, whatever that one implies)."""

    __tablename__ = "implied_roles"
    prior_role_id: Mapped[str] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True)
    implied_role_id: Mapped[str] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True)


class ApplicationCredential(Base):
    """A secret a user delegates (a subset of) their roles on one project to. Only the secret's
    hash is stored (kumo.identity.passwords, as for passwords); the secret is shown once."""

    __tablename__ = "application_credentials"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    secret_hash: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    unrestricted: Mapped[bool] = mapped_column(Boolean, default=False)
    role_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RegisteredLimit(Base):
    """Keystone's unified limits: the default limit of a service's resource (in a region, or
    in every region when `region_id` is None)."""

    __tablename__ = "registered_limits"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(64), index=True)
    region_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    resource_name: Mapped[str] = mapped_column(String(255))
    default_limit: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")


class ProjectLimit(Base):
    """A project's own limit of a resource that has a registered limit (Keystone's `limits`)."""

    __tablename__ = "project_limits"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[str] = mapped_column(String(64))
    region_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    resource_name: Mapped[str] = mapped_column(String(255))
    resource_limit: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")


class CatalogRegion(Base):
    """A region an administrator created (`/v3/regions`); kumo's own region is not a row."""

    __tablename__ = "identity_regions"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    parent_region_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)


class CatalogService(Base):
    """A service an administrator created (`/v3/services`); kumo's own services are not rows."""

    __tablename__ = "identity_services"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class CatalogEndpoint(Base):
    """An endpoint an administrator created (`/v3/endpoints`), of a stored service or of one
    of kumo's own; deleted with its service."""

    __tablename__ = "identity_endpoints"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(64), index=True)
    interface: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(Text)
    region_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Credential(Base):
    """A Keystone credential (`/v3/credentials`): its blob encrypted with `credential_key`."""

    __tablename__ = "identity_credentials"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    type: Mapped[str] = mapped_column(String(255))
    encrypted_blob: Mapped[str] = mapped_column(Text)
