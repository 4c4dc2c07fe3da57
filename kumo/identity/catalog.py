"""Keystone's catalog administration: regions, services and endpoints (`/v3/regions`,
`/v3/services`, `/v3/endpoints`).

The catalog is kumo's own services, endpoints and region (`kumo.identity.service.catalog`,
derived from the settings and the request's base URL, never stored) beside what an
administrator creates, stored in `identity_regions`, `identity_services` and
`identity_endpoints`. Invariants: kumo's own entries are listed and shown like stored ones but
are never changed or deleted (403); an endpoint's service and region exist (its region may be
none); a region's parent exists and regions form no cycle; deleting a service deletes its
endpoints; a region with child regions or endpoints is not deleted. Writes need the admin
role; services and endpoints are read by admins and system readers; regions by anyone
authenticated (Keystone's defaults). Tokens carry a stored endpoint when it and its service
are enabled (`token_entries`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.identity import models

Text255 = Annotated[StrictStr, Field(min_length=1, max_length=255)]
Interface = Literal["public", "internal", "admin"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RegionCreate(_Input):
    id: Text255 | None = None
    description: StrictStr = ""
    parent_region_id: Text255 | None = None


class RegionUpdate(_Input):
    description: StrictStr | None = None
    parent_region_id: Text255 | None = None


class ServiceCreate(_Input):
    type: Text255
    name: Annotated[StrictStr, Field(max_length=255)] = ""
    description: StrictStr = ""
    enabled: StrictBool = True


class ServiceUpdate(_Input):
    type: Text255 | None = None
    name: Annotated[StrictStr, Field(max_length=255)] | None = None
    description: StrictStr | None = None
    enabled: StrictBool | None = None


class EndpointCreate(_Input):
    service_id: Text255
    interface: Interface
    url: Annotated[StrictStr, Field(min_length=1, max_length=225)]
    region_id: Text255 | None = None
    region: Text255 | None = None  # the legacy name of region_id
    enabled: StrictBool = True


class EndpointUpdate(_Input):
    service_id: Text255 | None = None
    interface: Interface | None = None
    url: Annotated[StrictStr, Field(min_length=1, max_length=225)] | None = None
    region_id: Text255 | None = None
    region: Text255 | None = None
    enabled: StrictBool | None = None


@dataclass(frozen=True)
class Region:
    id: str
    description: str
    parent_region_id: str | None


@dataclass(frozen=True)
class Service:
    id: str
    type: str
    name: str
    description: str
    enabled: bool


@dataclass(frozen=True)
class Endpoint:
    id: str
    service_id: str
    interface: str
    region_id: str | None
    url: str
    enabled: bool


@dataclass(frozen=True)
class Own:
    """kumo's own part of the catalog, from `service.catalog(base, region)`."""

    region: str
    services: tuple[Service, ...]
    endpoints: tuple[Endpoint, ...]

    @classmethod
    def of(cls, catalog: list[dict[str, Any]], region: str) -> Own:
        return cls(
            region,
            tuple(Service(s["id"], s["type"], s["name"], "", True) for s in catalog),
            tuple(
                Endpoint(e["id"], s["id"], e["interface"], e["region_id"], e["url"], True)
                for s in catalog
                for e in s["endpoints"]
            ),
        )


def _own_entry(kind: str, entry_id: str) -> Forbidden:
    return Forbidden(f"The {kind} {entry_id} is one of kumo's own and cannot be changed.")


def _region(r: models.CatalogRegion) -> Region:
    return Region(r.id, r.description, r.parent_region_id)


def _service(s: models.CatalogService) -> Service:
    return Service(s.id, s.type, s.name, s.description, s.enabled)


def _endpoint(e: models.CatalogEndpoint) -> Endpoint:
    return Endpoint(e.id, e.service_id, e.interface, e.region_id, e.url, e.enabled)


# --- regions --------------------------------------------------------------------------------


def list_regions(
    session: Session, ctx: RequestContext, own: Own, *, parent_region_id: str | None = None
) -> list[Region]:
    found = [Region(own.region, "", None)]
    found += [
        _region(r) for r in session.scalars(select(models.CatalogRegion).order_by(models.CatalogRegion.id))
    ]
    return [r for r in found if parent_region_id is None or r.parent_region_id == parent_region_id]


def _region_exists(session: Session, own: Own, region_id: str) -> bool:
    return region_id == own.region or session.get(models.CatalogRegion, region_id) is not None


def get_region(session: Session, ctx: RequestContext, own: Own, region_id: str) -> Region:
    if region_id == own.region:
        return Region(own.region, "", None)
    row = session.get(models.CatalogRegion, region_id)
    if row is None:
        raise NotFound(f"Could not find region: {region_id}.")
    return _region(row)


def _check_parent(session: Session, own: Own, region_id: str, parent_id: str | None) -> None:
    """The parent exists and is not the region itself nor one of its descendants."""
    seen = {region_id}
    current = parent_id
    while current is not None:
        if current in seen:
            raise BadRequest(f"This region's parent {parent_id} would make a cycle of regions.")
        if not _region_exists(session, own, current):
            raise BadRequest(f"Invalid parent_region_id: could not find region {current}.")
        seen.add(current)
        row = session.get(models.CatalogRegion, current)
        current = row.parent_region_id if row is not None else None


def create_region(
    session: Session, ctx: RequestContext, own: Own, spec: RegionCreate, region_id: str | None = None
) -> Region:
    """POST /v3/regions (an `id` in the body, or a new one) and PUT /v3/regions/{id}."""
    ctx.require_admin()
    if region_id is not None and spec.id is not None and spec.id != region_id:
        raise BadRequest(f"The region id in the body, {spec.id}, is not the one in the URL, {region_id}.")
    new_id = region_id or spec.id or uuid.uuid4().hex
    if len(new_id) > 255:
        raise BadRequest("Invalid input for field 'id': a region id is at most 255 characters.")
    if _region_exists(session, own, new_id):
        raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {new_id}.")
    _check_parent(session, own, new_id, spec.parent_region_id)
    row = models.CatalogRegion(
        id=new_id, description=spec.description, parent_region_id=spec.parent_region_id
    )
    session.add(row)
    session.flush()
    return _region(row)


def _stored_region(session: Session, own: Own, region_id: str) -> models.CatalogRegion:
    if region_id == own.region:
        raise _own_entry("region", region_id)
    row = session.get(models.CatalogRegion, region_id)
    if row is None:
        raise NotFound(f"Could not find region: {region_id}.")
    return row


def update_region(
    session: Session, ctx: RequestContext, own: Own, region_id: str, spec: RegionUpdate
) -> Region:
    ctx.require_admin()
    row = _stored_region(session, own, region_id)
    if "parent_region_id" in spec.model_fields_set:
        _check_parent(session, own, region_id, spec.parent_region_id)
        row.parent_region_id = spec.parent_region_id
    if spec.description is not None:
        row.description = spec.description
    session.flush()
    return _region(row)


def delete_region(session: Session, ctx: RequestContext, own: Own, region_id: str) -> None:
    ctx.require_admin()
    row = _stored_region(session, own, region_id)
    children = select(func.count()).where(models.CatalogRegion.parent_region_id == region_id)
    if session.scalar(children):
        raise Forbidden(
            f"Unable to delete region {region_id} because it or its child regions have endpoints or children."
        )
    endpoints = select(func.count()).where(models.CatalogEndpoint.region_id == region_id)
    if session.scalar(endpoints):
        raise Forbidden(
            f"Unable to delete region {region_id} because it or its child regions have endpoints or children."
        )
    session.delete(row)
    session.flush()


# --- services -------------------------------------------------------------------------------


def list_services(
    session: Session, ctx: RequestContext, own: Own, *, type: str | None = None, name: str | None = None
) -> list[Service]:
    ctx.require_reader()
    stored = session.scalars(select(models.CatalogService).order_by(models.CatalogService.type))
    found = list(own.services) + [_service(s) for s in stored]
    return [s for s in found if (type is None or s.type == type) and (name is None or s.name == name)]


def get_service(session: Session, ctx: RequestContext, own: Own, service_id: str) -> Service:
    ctx.require_reader()
    for s in own.services:
        if s.id == service_id:
            return s
    row = session.get(models.CatalogService, service_id)
    if row is None:
        raise NotFound(f"Could not find service: {service_id}.")
    return _service(row)


def create_service(session: Session, ctx: RequestContext, spec: ServiceCreate) -> Service:
    ctx.require_admin()
    row = models.CatalogService(
        id=uuid.uuid4().hex,
        type=spec.type,
        name=spec.name,
        description=spec.description,
        enabled=spec.enabled,
    )
    session.add(row)
    session.flush()
    return _service(row)


def _stored_service(session: Session, own: Own, service_id: str) -> models.CatalogService:
    if any(s.id == service_id for s in own.services):
        raise _own_entry("service", service_id)
    row = session.get(models.CatalogService, service_id)
    if row is None:
        raise NotFound(f"Could not find service: {service_id}.")
    return row


def update_service(
    session: Session, ctx: RequestContext, own: Own, service_id: str, spec: ServiceUpdate
) -> Service:
    ctx.require_admin()
    row = _stored_service(session, own, service_id)
    for field in ("type", "name", "description", "enabled"):
        value = getattr(spec, field)
        if value is not None:
            setattr(row, field, value)
    session.flush()
    return _service(row)


def delete_service(session: Session, ctx: RequestContext, own: Own, service_id: str) -> None:
    """Its endpoints go with it."""
    ctx.require_admin()
    row = _stored_service(session, own, service_id)
    session.execute(delete(models.CatalogEndpoint).where(models.CatalogEndpoint.service_id == service_id))
    session.delete(row)
    session.flush()


# --- endpoints ------------------------------------------------------------------------------


def list_endpoints(
    session: Session,
    ctx: RequestContext,
    own: Own,
    *,
    service_id: str | None = None,
    interface: str | None = None,
    region_id: str | None = None,
) -> list[Endpoint]:
    ctx.require_reader()
    stored = session.scalars(select(models.CatalogEndpoint).order_by(models.CatalogEndpoint.id))
    found = list(own.endpoints) + [_endpoint(e) for e in stored]
    return [
        e
        for e in found
        if (service_id is None or e.service_id == service_id)
        and (interface is None or e.interface == interface)
        and (region_id is None or e.region_id == region_id)
    ]


def get_endpoint(session: Session, ctx: RequestContext, own: Own, endpoint_id: str) -> Endpoint:
    ctx.require_reader()
    for e in own.endpoints:
        if e.id == endpoint_id:
            return e
    row = session.get(models.CatalogEndpoint, endpoint_id)
    if row is None:
        raise NotFound(f"Could not find endpoint: {endpoint_id}.")
    return _endpoint(row)


def _check_service(session: Session, own: Own, service_id: str) -> None:
    if (
        not any(s.id == service_id for s in own.services)
        and session.get(models.CatalogService, service_id) is None
    ):
        raise BadRequest(f"Invalid service_id: could not find service {service_id}.")


def _check_region(session: Session, own: Own, region_id: str | None) -> None:
    if region_id is not None and not _region_exists(session, own, region_id):
        raise BadRequest(f"Invalid region_id: could not find region {region_id}.")


def _legacy_region(session: Session, own: Own, region: str) -> str:
    """The legacy `region` of an endpoint (given without `region_id`): as Keystone, for the
    clients that use v3 as they used v2, a region of that id is created when none exists."""
    if not _region_exists(session, own, region):
        session.add(models.CatalogRegion(id=region, description="", parent_region_id=None))
        session.flush()
    return region


def create_endpoint(session: Session, ctx: RequestContext, own: Own, spec: EndpointCreate) -> Endpoint:
    """`region_id` must name a region; the legacy `region` (without `region_id`) names one or
    creates it."""
    ctx.require_admin()
    _check_service(session, own, spec.service_id)
    region_id = spec.region_id
    if region_id is None and spec.region is not None:
        region_id = _legacy_region(session, own, spec.region)
    _check_region(session, own, region_id)
    row = models.CatalogEndpoint(
        id=uuid.uuid4().hex,
        service_id=spec.service_id,
        interface=spec.interface,
        url=spec.url,
        region_id=region_id,
        enabled=spec.enabled,
    )
    session.add(row)
    session.flush()
    return _endpoint(row)


def _stored_endpoint(session: Session, own: Own, endpoint_id: str) -> models.CatalogEndpoint:
    if any(e.id == endpoint_id for e in own.endpoints):
        raise _own_entry("endpoint", endpoint_id)
    row = session.get(models.CatalogEndpoint, endpoint_id)
    if row is None:
        raise NotFound(f"Could not find endpoint: {endpoint_id}.")
    return row


def update_endpoint(
    session: Session, ctx: RequestContext, own: Own, endpoint_id: str, spec: EndpointUpdate
) -> Endpoint:
    ctx.require_admin()
    row = _stored_endpoint(session, own, endpoint_id)
    if spec.service_id is not None:
        _check_service(session, own, spec.service_id)
        row.service_id = spec.service_id
    fields = spec.model_fields_set
    if "region_id" in fields:
        _check_region(session, own, spec.region_id)
        row.region_id = spec.region_id
    elif "region" in fields:
        row.region_id = _legacy_region(session, own, spec.region) if spec.region is not None else None
    if spec.interface is not None:
        row.interface = spec.interface
    if spec.url is not None:
        row.url = spec.url
    if spec.enabled is not None:
        row.enabled = spec.enabled
    session.flush()
    return _endpoint(row)


def delete_endpoint(session: Session, ctx: RequestContext, own: Own, endpoint_id: str) -> None:
    ctx.require_admin()
    session.delete(_stored_endpoint(session, own, endpoint_id))
    session.flush()


# --- the token's catalog --------------------------------------------------------------------


def token_catalog(session: Session, own_catalog: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A token's catalog: kumo's own (`service.catalog`, unchanged) with each stored enabled
    endpoint whose service is enabled added under its service, one of kumo's own or a stored
    one; a stored service appears only with at least one such endpoint (clients read a
    service's presence in the catalog as its being there)."""
    rows = session.execute(
        select(models.CatalogEndpoint, models.CatalogService)
        .outerjoin(models.CatalogService, models.CatalogService.id == models.CatalogEndpoint.service_id)
        .where(models.CatalogEndpoint.enabled.is_(True))
        .order_by(models.CatalogEndpoint.id)
    ).all()
    entries = [{**s, "endpoints": list(s["endpoints"])} for s in own_catalog]
    by_id = {s["id"]: s for s in entries}
    for endpoint, svc in rows:
        if endpoint.service_id not in by_id:
            if svc is None or not svc.enabled:
                continue
            by_id[svc.id] = {"id": svc.id, "type": svc.type, "name": svc.name, "endpoints": []}
            entries.append(by_id[svc.id])
        by_id[endpoint.service_id]["endpoints"].append(
            {
                "id": endpoint.id,
                "interface": endpoint.interface,
                "region": endpoint.region_id,
                "region_id": endpoint.region_id,
                "url": endpoint.url,
            }
        )
    return entries
