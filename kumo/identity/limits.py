"""Unified limits (Keystone's /v3/registered_limits and /v3/limits, the flat model) and what
compute's quota code reads of them.

Invariants: a registered limit is unique per (service, region, resource); a project limit
needs a registered limit of its (service, region, resource) and is unique per project and
those; limits are integers from -1 (unlimited) to MAX_INT. `compute_overrides` maps Nova's
unified-limit resource names (`servers`, `class:VCPU`, `class:MEMORY_MB`, ...) to kumo's quota
resources, for the registered limits (project None) or a project's limits, in one statement.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.identity.models import CatalogRegion, CatalogService, Project, ProjectLimit, RegisteredLimit
from kumo.validation import MAX_INT

_POLICY = "Policy doesn't allow this operation to be performed."

# Nova's unified-limits resource names -> kumo's quota resources.
COMPUTE_RESOURCES = {
    "servers": "instances",
    "class:VCPU": "cores",
    "class:MEMORY_MB": "ram",
    "server_metadata_items": "metadata_items",
    "server_injected_files": "injected_files",
    "server_injected_file_content_bytes": "injected_file_content_bytes",
    "server_injected_file_path_bytes": "injected_file_path_bytes",
    "server_key_pairs": "key_pairs",
    "server_groups": "server_groups",
    "server_group_members": "server_group_members",
}

Limit = Annotated[StrictInt, Field(ge=-1, le=MAX_INT)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=255)]
Ref = Annotated[StrictStr, Field(min_length=1, max_length=255)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RegisteredLimitCreate(_Input):
    service_id: Ref
    resource_name: Name
    default_limit: Limit
    region_id: Ref | None = None
    description: StrictStr | None = None


class RegisteredLimitUpdate(_Input):
    default_limit: Limit | None = None
    description: StrictStr | None = None


class LimitCreate(_Input):
    project_id: Ref
    service_id: Ref
    resource_name: Name
    resource_limit: Limit
    region_id: Ref | None = None
    description: StrictStr | None = None


class LimitUpdate(_Input):
    resource_limit: Limit | None = None
    description: StrictStr | None = None


@dataclass(frozen=True)
class Catalog:
    """What limits may name: kumo's own service ids and region (the services and regions an
    administrator stored are read from the session)."""

    service_ids: frozenset[str]
    region: str


def _check_refs(session: Session, catalog: Catalog, service_id: str, region_id: str | None) -> None:
    if service_id not in catalog.service_ids and session.get(CatalogService, service_id) is None:
        raise BadRequest(f"Invalid service_id: {service_id} is not a service of the catalog.")
    if (
        region_id is not None
        and region_id != catalog.region
        and session.get(CatalogRegion, region_id) is None
    ):
        raise BadRequest(f"Invalid region_id: {region_id} is not a region.")


def _registered(
    session: Session, service_id: str, region_id: str | None, resource: str
) -> RegisteredLimit | None:
    return session.scalar(
        select(RegisteredLimit).where(
            RegisteredLimit.service_id == service_id,
            RegisteredLimit.region_id.is_(None)
            if region_id is None
            else RegisteredLimit.region_id == region_id,
            RegisteredLimit.resource_name == resource,
        )
    )


def create_registered(
    session: Session, ctx: RequestContext, catalog: Catalog, specs: list[RegisteredLimitCreate]
) -> list[RegisteredLimit]:
    ctx.require_admin()
    if not specs:
        raise BadRequest("Invalid input for field 'registered_limits': at least one is needed.")
    made = []
    for spec in specs:
        _check_refs(session, catalog, spec.service_id, spec.region_id)
        if _registered(session, spec.service_id, spec.region_id, spec.resource_name) is not None:
            raise Conflict(f"Duplicate entry: registered limit of {spec.resource_name} exists.")
        limit = RegisteredLimit(
            id=uuid.uuid4().hex,
            service_id=spec.service_id,
            region_id=spec.region_id,
            resource_name=spec.resource_name,
            default_limit=spec.default_limit,
            description=spec.description or "",
        )
        session.add(limit)
        session.flush()
        made.append(limit)
    return made


def list_registered(
    session: Session,
    ctx: RequestContext,
    *,
    service_id: str | None = None,
    region_id: str | None = None,
    resource_name: str | None = None,
) -> list[RegisteredLimit]:
    """Anyone authenticated may read the registered limits, as in Keystone."""
    query = select(RegisteredLimit).order_by(RegisteredLimit.resource_name, RegisteredLimit.id)
    if service_id is not None:
        query = query.where(RegisteredLimit.service_id == service_id)
    if region_id is not None:
        query = query.where(RegisteredLimit.region_id == region_id)
    if resource_name is not None:
        query = query.where(RegisteredLimit.resource_name == resource_name)
    return list(session.scalars(query))


def get_registered(session: Session, ctx: RequestContext, limit_id: str) -> RegisteredLimit:
    limit = session.get(RegisteredLimit, limit_id)
    if limit is None:
        raise NotFound(f"Could not find registered limit for {limit_id}.")
    return limit


def update_registered(
    session: Session, ctx: RequestContext, limit_id: str, update: RegisteredLimitUpdate
) -> RegisteredLimit:
    ctx.require_admin()
    limit = get_registered(session, ctx, limit_id)
    if update.default_limit is not None:
        limit.default_limit = update.default_limit
    if "description" in update.model_fields_set:
        limit.description = update.description or ""
    session.flush()
    return limit


def delete_registered(session: Session, ctx: RequestContext, limit_id: str) -> None:
    """Refused (403) while a project limit refers to it, as Keystone does."""
    ctx.require_admin()
    limit = get_registered(session, ctx, limit_id)
    if _project_limits_of(session, limit):
        raise Forbidden("Cannot delete a registered limit that project limits refer to.")
    session.delete(limit)
    session.flush()


def _project_limits_of(session: Session, limit: RegisteredLimit) -> list[ProjectLimit]:
    query = select(ProjectLimit).where(
        ProjectLimit.service_id == limit.service_id,
        ProjectLimit.resource_name == limit.resource_name,
        ProjectLimit.region_id.is_(None)
        if limit.region_id is None
        else ProjectLimit.region_id == limit.region_id,
    )
    return list(session.scalars(query))


def create_limits(
    session: Session, ctx: RequestContext, catalog: Catalog, specs: list[LimitCreate]
) -> list[ProjectLimit]:
    ctx.require_admin()
    if not specs:
        raise BadRequest("Invalid input for field 'limits': at least one is needed.")
    made = []
    for spec in specs:
        _check_refs(session, catalog, spec.service_id, spec.region_id)
        if session.get(Project, spec.project_id) is None:
            raise BadRequest(f"Could not find project: {spec.project_id}.")
        if _registered(session, spec.service_id, spec.region_id, spec.resource_name) is None:
            raise Forbidden(f"No registered limit of {spec.resource_name} for this service and region.")
        clash = session.scalar(
            select(ProjectLimit.id).where(
                ProjectLimit.project_id == spec.project_id,
                ProjectLimit.service_id == spec.service_id,
                ProjectLimit.region_id.is_(None)
                if spec.region_id is None
                else ProjectLimit.region_id == spec.region_id,
                ProjectLimit.resource_name == spec.resource_name,
            )
        )
        if clash is not None:
            raise Conflict(f"Duplicate entry: the project's limit of {spec.resource_name} exists.")
        limit = ProjectLimit(
            id=uuid.uuid4().hex,
            project_id=spec.project_id,
            service_id=spec.service_id,
            region_id=spec.region_id,
            resource_name=spec.resource_name,
            resource_limit=spec.resource_limit,
            description=spec.description or "",
        )
        session.add(limit)
        session.flush()
        made.append(limit)
    return made


def list_limits(
    session: Session,
    ctx: RequestContext,
    *,
    project_id: str | None = None,
    service_id: str | None = None,
    resource_name: str | None = None,
) -> list[ProjectLimit]:
    """Admins and system readers see every project's limits; others their token's project's."""
    query = select(ProjectLimit).order_by(ProjectLimit.resource_name, ProjectLimit.id)
    if not ctx.can_read_everything:
        if not ctx.project_id:
            return []  # a domain- or system-scoped token of no reader role sees no project's
        query = query.where(ProjectLimit.project_id == ctx.project_id)
    if project_id is not None:
        query = query.where(ProjectLimit.project_id == project_id)
    if service_id is not None:
        query = query.where(ProjectLimit.service_id == service_id)
    if resource_name is not None:
        query = query.where(ProjectLimit.resource_name == resource_name)
    return list(session.scalars(query))


def get_limit(session: Session, ctx: RequestContext, limit_id: str) -> ProjectLimit:
    limit = session.get(ProjectLimit, limit_id)
    if limit is None or (not ctx.can_read_everything and limit.project_id != ctx.project_id):
        raise NotFound(f"Could not find limit for {limit_id}.")
    return limit


def update_limit(session: Session, ctx: RequestContext, limit_id: str, update: LimitUpdate) -> ProjectLimit:
    ctx.require_admin()
    limit = get_limit(session, ctx, limit_id)
    if update.resource_limit is not None:
        limit.resource_limit = update.resource_limit
    if "description" in update.model_fields_set:
        limit.description = update.description or ""
    session.flush()
    return limit


def delete_limit(session: Session, ctx: RequestContext, limit_id: str) -> None:
    ctx.require_admin()
    session.delete(get_limit(session, ctx, limit_id))
    session.flush()


def compute_overrides(
    session: Session, service_id: str, region: str, project_id: str | None = None
) -> dict[str, int]:
    """kumo quota resource -> limit: the registered limits of compute (project None), or the
    project's own limits, in this region or every region (a region's own wins)."""
    model = RegisteredLimit if project_id is None else ProjectLimit
    value = RegisteredLimit.default_limit if project_id is None else ProjectLimit.resource_limit
    query = select(model.resource_name, model.region_id, value).where(
        model.service_id == service_id,
        model.resource_name.in_(sorted(COMPUTE_RESOURCES)),
        model.region_id.is_(None) | (model.region_id == region),
    )
    if project_id is not None:
        query = query.where(ProjectLimit.project_id == project_id)
    out: dict[str, int] = {}
    for name, _region, limit in sorted(session.execute(query), key=lambda row: row[1] is not None):
        out[COMPUTE_RESOURCES[name]] = int(limit)  # rows of a region come last and win
    return out
