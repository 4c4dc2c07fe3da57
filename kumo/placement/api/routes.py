"""Placement API routes: version check, policy (admin only, as Placement's default), parse,
domain call, view. Every response carries `OpenStack-API-Version: placement X`."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from kumo.api.context import RequestContext
from kumo.api.deps import context, runtime
from kumo.api.openapi import json_body
from kumo.errors import BadRequest, KumoError, NotFound
from kumo.placement import aggregates as aggregates_domain
from kumo.placement import traits as traits_domain
from kumo.placement.api import allocations as allocations_domain
from kumo.placement.api import inventories as inventories_domain
from kumo.placement.api import microversion as mv
from kumo.placement.api import params, providers, resource_classes, schemas, views
from kumo.placement.api.allocation_body import allocation_write, consumer_uuid
from kumo.placement.api.microversion import Version
from kumo.placement.api.responses import finish, no_content, placement_error
from kumo.placement.candidates import candidates_body, find_candidates
from kumo.runtime import Runtime


class PlacementRoute(APIRoute):
    """Adds the microversion headers (and 1.15's cache headers) to every response, errors too."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handle(request)
            except KumoError as exc:
                response = placement_error(request.url.path, exc)
            return finish(response, getattr(request.state, "placement_version", None), request.method)

        return route


async def placement_version(request: Request) -> Version:
    version = mv.parse(request.headers.get("openstack-api-version"))
    request.state.placement_version = version
    return version


async def admin(ctx: RequestContext = Depends(context)) -> RequestContext:
    ctx.require_admin()
    return ctx


router = APIRouter(prefix="/placement", route_class=PlacementRoute, dependencies=[Depends(placement_version)])
Admin = Depends(admin)
V = Depends(placement_version)
RT = Depends(runtime)


class _Json(JSONResponse):
    """JSON encoded by orjson: the same compact UTF-8 bytes as Starlette's json.dumps for the
    JSON types views build (a page of allocation candidates with their provider summaries is
    large)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return _Json(body, status_code=status, headers=headers)


def _query(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


@router.get("")
@router.get("/")
def root() -> JSONResponse:
    return _json(views.versions())


# ---------------------------------------------------------------------------- resource providers


@router.get("/resource_providers", openapi_extra=schemas.PROVIDER_LIST_QUERY)
def list_resource_providers(
    request: Request, v: Version = V, _c: Any = Admin, rt: Runtime = RT
) -> JSONResponse:
    query = _query(request)
    allowed = ["name", "uuid"]
    for minor, key in ((3, "member_of"), (4, "resources"), (14, "in_tree"), (18, "required")):
        if v.at_least(minor):
            allowed.append(key)
    params.check_keys(query, allowed)
    filters = providers.ProviderFilters(name=params.last(query, "name"))
    if (uuid := params.last(query, "uuid")) is not None:
        filters.uuid = params.parse_uuid_param(uuid, "uuid")
    if (in_tree := params.last(query, "in_tree")) is not None:
        filters.in_tree = params.parse_uuid_param(in_tree, "in_tree")
    if (wanted := params.last(query, "resources")) is not None:
        filters.resources = params.parse_resources(wanted)
    if (required := params.last(query, "required")) is not None:
        filters.required, filters.forbidden = params.parse_required(required, v.at_least(22))
    member_of = [value for key, value in query if key == "member_of"]
    if member_of:
        filters.member_of, filters.forbidden_aggregates = params.parse_member_of(member_of, v)
    with rt.db.read() as session:
        try:
            resource_classes.require_classes(session, filters.resources, " in resources parameter")
            traits_domain.require_traits(
                session, {t for s in filters.required for t in s} | filters.forbidden
            )
        except BadRequest as exc:
            raise BadRequest(f"Invalid query string parameters: {exc.message}") from exc
        found = providers.list_providers(session, filters)
    return _json(views.providers(found, v))


@router.post("/resource_providers", openapi_extra=json_body(schemas.PROVIDER_CREATE))
def create_resource_provider(
    body: Any = Body(None), v: Version = V, _c: Any = Admin, rt: Runtime = RT
) -> Response:
    data = params.obj(body, ["name"], ["uuid", "parent_provider_uuid"] if v.at_least(14) else ["uuid"])
    name = params.string(data["name"], "name", 1, 200)
    uuid = params.uuid_string(data["uuid"], "uuid") if data.get("uuid") is not None else None
    parent = data.get("parent_provider_uuid")
    parent = params.uuid_string(parent, "parent_provider_uuid") if parent is not None else None
    with rt.db.transaction() as session:
        created = providers.create_provider(session, name, uuid, parent)
    location = views.provider_url(created.uuid)
    if v.at_least(20):
        return _json(views.provider(created, v), headers={"location": location})
    return no_content(201, location)


@router.get("/resource_providers/{uuid}")
def show_resource_provider(uuid: str, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> JSONResponse:
    with rt.db.read() as session:
        return _json(views.provider(providers.get_provider(session, uuid), v))


@router.put("/resource_providers/{uuid}", openapi_extra=json_body(schemas.PROVIDER_UPDATE))
def update_resource_provider(
    uuid: str, body: Any = Body(None), v: Version = V, _c: Any = Admin, rt: Runtime = RT
) -> JSONResponse:
    data = params.obj(body, ["name"], ["parent_provider_uuid"] if v.at_least(14) else [])
    name = params.string(data["name"], "name", 1, 200)
    kwargs: dict[str, Any] = {}
    if "parent_provider_uuid" in data:
        parent = data["parent_provider_uuid"]
        kwargs["parent_uuid"] = (
            params.uuid_string(parent, "parent_provider_uuid") if parent is not None else None
        )
    with rt.db.transaction() as session:
        updated = providers.update_provider(session, uuid, name, **kwargs)
    return _json(views.provider(updated, v))


@router.delete("/resource_providers/{uuid}")
def delete_resource_provider(uuid: str, _c: Any = Admin, rt: Runtime = RT) -> Response:
    with rt.db.transaction() as session:
        providers.delete_provider(session, uuid)
    return no_content()


# ---------------------------------------------------------------------------- inventories


@router.get("/resource_providers/{uuid}/inventories")
def get_inventories(uuid: str, _c: Any = Admin, rt: Runtime = RT) -> JSONResponse:
    with rt.db.read() as session:
        provider = providers.get_provider(session, uuid)
        records = inventories_domain.inventories(session, provider.id)
    return _json(views.inventories(provider.generation, records))


@router.put("/resource_providers/{uuid}/inventories", openapi_extra=json_body(schemas.INVENTORIES_SET))
def set_inventories(
    uuid: str, body: Any = Body(None), v: Version = V, _c: Any = Admin, rt: Runtime = RT
) -> JSONResponse:
    data = params.obj(body, ["inventories", "resource_provider_generation"])
    seen = params.generation(data["resource_provider_generation"])
    records = params.inventories(data["inventories"])
    with rt.db.transaction() as session:
        provider = providers.get_provider(session, uuid)
        generation = inventories_domain.set_inventories(
            session, provider, records, seen, reserved_may_equal_total=v.at_least(26)
        )
        current = inventories_domain.inventories(session, provider.id)
    return _json(views.inventories(generation, current))


@router.post("/resource_providers/{uuid}/inventories", openapi_extra=json_body(schemas.INVENTORY_CREATE))
def create_inventory(uuid: str, body: Any = Body(None), _c: Any = Admin, rt: Runtime = RT) -> Response:
    record = params.inventory(body, "body", with_class=True, with_generation=True)
    rc = params.resource_class(body["resource_class"])
    seen = params.generation(body["resource_provider_generation"])
    with rt.db.transaction() as session:
        provider = providers.get_provider(session, uuid)
        generation = inventories_domain.create_inventory(session, provider, rc, record, seen)
        current = inventories_domain.inventories(session, provider.id)[rc]
    location = f"{views.provider_url(uuid)}/inventories/{rc}"
    return _json(views.inventory(generation, current), 201, {"location": location})


@router.delete("/resource_providers/{uuid}/inventories")
def delete_inventories(uuid: str, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> Response:
    v.require(5)
    with rt.db.transaction() as session:
        inventories_domain.delete_all_inventories(session, providers.get_provider(session, uuid))
    return no_content()


@router.get("/resource_providers/{uuid}/inventories/{resource_class}")
def get_inventory(uuid: str, resource_class: str, _c: Any = Admin, rt: Runtime = RT) -> JSONResponse:
    with rt.db.read() as session:
        provider = providers.get_provider(session, uuid)
        record = inventories_domain.inventories(session, provider.id).get(resource_class)
    if record is None:
        raise NotFound(f"No inventory of class {resource_class} for {uuid}")
    return _json(views.inventory(provider.generation, record))


@router.put(
    "/resource_providers/{uuid}/inventories/{resource_class}",
    openapi_extra=json_body(schemas.INVENTORY_UPDATE),
)
def update_inventory(
    uuid: str, resource_class: str, body: Any = Body(None), v: Version = V, _c: Any = Admin, rt: Runtime = RT
) -> JSONResponse:
    record = params.inventory(body, "body", with_generation=True)
    seen = params.generation(body["resource_provider_generation"])
    with rt.db.transaction() as session:
        provider = providers.get_provider(session, uuid)
        generation = inventories_domain.update_inventory(
            session, provider, resource_class, record, seen, reserved_may_equal_total=v.at_least(26)
        )
        current = inventories_domain.inventories(session, provider.id)[resource_class]
    return _json(views.inventory(generation, current))


@router.delete("/resource_providers/{uuid}/inventories/{resource_class}")
def delete_inventory(uuid: str, resource_class: str, _c: Any = Admin, rt: Runtime = RT) -> Response:
    with rt.db.transaction() as session:
        inventories_domain.delete_inventory(session, providers.get_provider(session, uuid), resource_class)
    return no_content()


# ---------------------------------------------------------------------------- usages


@router.get("/resource_providers/{uuid}/usages")
def provider_usages(uuid: str, _c: Any = Admin, rt: Runtime = RT) -> JSONResponse:
    with rt.db.read() as session:
        provider = providers.get_provider(session, uuid)
        usages = allocations_domain.provider_usages(session, provider.id)
    return _json({"resource_provider_generation": provider.generation, "usages": usages})


@router.get("/usages", openapi_extra=schemas.USAGES_QUERY)
def total_usages(request: Request, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> JSONResponse:
    v.require(9)
    query = _query(request)
    params.check_keys(query, ["project_id", "user_id"])
    project_id = params.last(query, "project_id")
    if not project_id:
        raise BadRequest("Invalid query string parameters: 'project_id' is a required property")
    with rt.db.read() as session:
        usages = allocations_domain.total_usages(session, project_id, params.last(query, "user_id"))
    return _json({"usages": usages})


# ---------------------------------------------------------------------------- aggregates


@router.get("/resource_providers/{uuid}/aggregates")
def get_aggregates(uuid: str, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> JSONResponse:
    v.require(1)
    with rt.db.read() as session:
        provider = providers.get_provider(session, uuid)
        found = aggregates_domain.provider_aggregates(session, provider.id)
    return _json(_aggregates_body(found, provider.generation, v))


def _aggregates_body(uuids: list[str], generation: int, v: Version) -> dict[str, Any]:
    return (
        {"aggregates": uuids, "resource_provider_generation": generation}
        if v.at_least(19)
        else {"aggregates": uuids}
    )


@router.put("/resource_providers/{uuid}/aggregates", openapi_extra=json_body(schemas.AGGREGATES_SET))
def set_aggregates(
    uuid: str, body: Any = Body(None), v: Version = V, _c: Any = Admin, rt: Runtime = RT
) -> JSONResponse:
    v.require(1)
    seen: int | None = None
    if v.at_least(19):
        data = params.obj(body, ["aggregates", "resource_provider_generation"])
        uuids = params.uuid_list(data["aggregates"], "aggregates")
        seen = params.generation(data["resource_provider_generation"])
    else:
        uuids = params.uuid_list(body, "aggregates")
    with rt.db.transaction() as session:
        provider = providers.get_provider(session, uuid)
        generation = aggregates_domain.set_provider_aggregates(
            session, provider, uuids, seen, bump=v.at_least(19)
        )
        found = aggregates_domain.provider_aggregates(session, provider.id)
    return _json(_aggregates_body(found, generation, v))


# ---------------------------------------------------------------------------- traits


@router.get("/traits", openapi_extra=schemas.TRAIT_LIST_QUERY)
def list_traits(request: Request, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> JSONResponse:
    v.require(6)
    query = _query(request)
    params.check_keys(query, ["name", "associated"])
    names: list[str] | None = None
    prefix: str | None = None
    if (name := params.last(query, "name")) is not None:
        if name.startswith("in:"):
            names = [n.strip() for n in name[3:].split(",")]
        elif name.startswith("startswith:"):
            prefix = name[len("startswith:") :]
        else:
            raise BadRequest(
                f"Badly formatted name parameter. Expected name query string parameter in form: "
                f'?name=[in|startswith]:[name1,name2|prefix]. Got: "{name}"'
            )
    associated: bool | None = None
    if (value := params.last(query, "associated")) is not None:
        if value.lower() not in ("true", "false"):
            raise BadRequest(f'The query parameter "associated" only accepts "true" or "false". Got: {value}')
        associated = value.lower() == "true"
    with rt.db.read() as session:
        found = traits_domain.list_traits(session, names=names, prefix=prefix, associated=associated)
    return _json({"traits": found})


@router.get("/traits/{name}")
def show_trait(name: str, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> Response:
    v.require(6)
    with rt.db.read() as session:
        if not traits_domain.trait_exists(session, name):
            raise NotFound(f"No such trait(s): {name}")
    return no_content()


@router.put("/traits/{name}")
def put_trait(name: str, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> Response:
    v.require(6)
    with rt.db.transaction() as session:
        created = traits_domain.create_custom_trait(session, name)
    return no_content(201 if created else 204, f"{views.PREFIX}/traits/{name}")


@router.delete("/traits/{name}")
def delete_trait(name: str, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> Response:
    v.require(6)
    with rt.db.transaction() as session:
        traits_domain.delete_custom_trait(session, name)
    return no_content()


@router.get("/resource_providers/{uuid}/traits")
def get_provider_traits(uuid: str, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> JSONResponse:
    v.require(6)
    with rt.db.read() as session:
        provider = providers.get_provider(session, uuid)
        found = traits_domain.provider_traits(session, provider.id)
    return _json({"traits": found, "resource_provider_generation": provider.generation})


@router.put("/resource_providers/{uuid}/traits", openapi_extra=json_body(schemas.TRAITS_SET))
def set_provider_traits(
    uuid: str, body: Any = Body(None), v: Version = V, _c: Any = Admin, rt: Runtime = RT
) -> JSONResponse:
    v.require(6)
    data = params.obj(body, ["traits", "resource_provider_generation"])
    names = params.trait_list(data["traits"])
    seen = params.generation(data["resource_provider_generation"])
    with rt.db.transaction() as session:
        provider = providers.get_provider(session, uuid)
        generation = traits_domain.set_provider_traits(session, provider, names, seen)
        found = traits_domain.provider_traits(session, provider.id)
    return _json({"traits": found, "resource_provider_generation": generation})


@router.delete("/resource_providers/{uuid}/traits")
def delete_provider_traits(uuid: str, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> Response:
    v.require(6)
    with rt.db.transaction() as session:
        traits_domain.set_provider_traits(session, providers.get_provider(session, uuid), [], None)
    return no_content()


# ---------------------------------------------------------------------------- resource classes


@router.get("/resource_classes")
def list_resource_classes(v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> JSONResponse:
    v.require(2)
    with rt.db.read() as session:
        names = resource_classes.list_classes(session)
    return _json({"resource_classes": [views.resource_class(n) for n in names]})


@router.post("/resource_classes", openapi_extra=json_body(schemas.RESOURCE_CLASS_CREATE))
def create_resource_class(
    body: Any = Body(None), v: Version = V, _c: Any = Admin, rt: Runtime = RT
) -> Response:
    v.require(2)
    name = params.string(params.obj(body, ["name"])["name"], "name")
    with rt.db.transaction() as session:
        resource_classes.create_class(session, name)
    return no_content(201, f"{views.PREFIX}/resource_classes/{name}")


@router.get("/resource_classes/{name}")
def show_resource_class(name: str, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> JSONResponse:
    v.require(2)
    with rt.db.read() as session:
        if not resource_classes.class_exists(session, name):
            raise NotFound(f"No such resource class {name}.")
    return _json(views.resource_class(name))


@router.put("/resource_classes/{name}")
def put_resource_class(name: str, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> Response:
    v.require(7)  # 1.2-1.6 renamed a class with a body; kumo serves the 1.7 bodiless create
    with rt.db.transaction() as session:
        created = resource_classes.ensure_class(session, name)
    return no_content(201 if created else 204, f"{views.PREFIX}/resource_classes/{name}")


@router.delete("/resource_classes/{name}")
def delete_resource_class(name: str, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> Response:
    v.require(2)
    with rt.db.transaction() as session:
        resource_classes.delete_class(session, name)
    return no_content()


# ---------------------------------------------------------------------------- allocations


@router.get("/allocations/{consumer}")
def get_allocations(consumer: str, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> JSONResponse:
    with rt.db.read() as session:
        found = allocations_domain.allocations_of_consumer(session, consumer)
    return _json(views.consumer_allocations(found, v))


@router.put("/allocations/{consumer}", openapi_extra=json_body(schemas.ALLOCATIONS_PUT))
def put_allocations(
    consumer: str, body: Any = Body(None), v: Version = V, _c: Any = Admin, rt: Runtime = RT
) -> Response:
    write = allocation_write(consumer_uuid(consumer), body, v, "body")
    with rt.db.transaction() as session:
        allocations_domain.replace_allocations(session, [write])
    return no_content()


@router.post("/allocations", openapi_extra=json_body(schemas.ALLOCATIONS_POST))
def post_allocations(body: Any = Body(None), v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> Response:
    v.require(13)
    if not isinstance(body, dict) or not body:
        raise params.invalid("body must be a non-empty object of consumer uuid: allocations")
    writes = [allocation_write(consumer_uuid(c), data, v, c, in_post=True) for c, data in body.items()]
    with rt.db.transaction() as session:
        allocations_domain.replace_allocations(session, writes)
    return no_content()


@router.delete("/allocations/{consumer}")
def delete_allocations(consumer: str, _c: Any = Admin, rt: Runtime = RT) -> Response:
    with rt.db.transaction() as session:
        allocations_domain.delete_allocations(session, consumer)
    return no_content()


@router.get("/resource_providers/{uuid}/allocations")
def provider_allocations(uuid: str, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> JSONResponse:
    with rt.db.read() as session:
        provider = providers.get_provider(session, uuid)
        found = allocations_domain.allocations_on_provider(session, provider)
    return _json(views.provider_allocations(provider.generation, found, v))


@router.post("/reshaper", openapi_extra=json_body(schemas.RESHAPE))
def reshape(body: Any = Body(None), v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> Response:
    v.require(30)
    data = params.obj(body, ["inventories", "allocations"])
    if not isinstance(data["inventories"], dict) or not isinstance(data["allocations"], dict):
        raise params.invalid("inventories and allocations must be objects")
    inventories: dict[str, tuple[dict[str, dict[str, Any]], int]] = {}
    for rp_uuid, entry in data["inventories"].items():
        entry = params.obj(
            entry, ["inventories", "resource_provider_generation"], where=f"inventories.{rp_uuid}"
        )
        seen = params.generation(entry["resource_provider_generation"])
        inventories[params.uuid_string(rp_uuid, "inventories")] = (
            params.inventories(entry["inventories"]),
            seen,
        )
    writes = [
        allocation_write(consumer_uuid(c), d, v, c, in_post=True) for c, d in data["allocations"].items()
    ]
    with rt.db.transaction() as session:
        allocations_domain.reshape(session, inventories, writes)
    return no_content()


# ---------------------------------------------------------------------------- allocation candidates


@router.get("/allocation_candidates", openapi_extra=schemas.CANDIDATES_QUERY)
def allocation_candidates(request: Request, v: Version = V, _c: Any = Admin, rt: Runtime = RT) -> Response:
    v.require(10)
    wanted = params.candidate_request(_query(request), v)
    with rt.db.read() as session:
        resource_classes.require_classes(
            session, {rc for g in wanted.groups for rc in g.resources}, " in resources parameter"
        )
        traits_domain.require_traits(session, params.traits_in(wanted))
        body = candidates_body(session, wanted, views.candidates_shape(v))
        if body is not None:
            return Response(body, media_type="application/json")
        found = find_candidates(session, wanted, all_resources=v.at_least(27))
    return _json(views.candidates(found, v))
