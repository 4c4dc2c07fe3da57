"""Image precaching on an aggregate's hosts (Nova's 2.81 `POST /os-aggregates/{id}/images`):
the request's validation, in Nova's order.

`request` is the one domain function the route calls: it validates, then starts a precache job
(kumo/compute/precache/service.py: the images fanned out to the aggregate's hosts, one origin copy per
rack) in the same transaction. The route's contract (202, no body) stays as Nova's; the job's id
is in the response's headers (`Location`, `X-Kumo-Precache-Job`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import aggregates, params
from kumo.compute.precache import service as precache
from kumo.errors import BadRequest

VERSION = "2.81"


@dataclass(frozen=True)
class PrecacheRequest:
    """The images to cache (in the order asked) on the hosts of one aggregate."""

    aggregate_id: int
    aggregate_uuid: str
    hosts: tuple[str, ...]
    image_ids: tuple[str, ...]
    job_id: str


def parse(body: Any) -> list[str]:
    """`{"cache": [{"id": <image uuid>}, ...]}`: at least one image, nothing else in the body
    or in an item (Nova's aggregate_images schema)."""
    if not isinstance(body, dict) or "cache" not in body:
        raise BadRequest("Invalid input for field/attribute cache. 'cache' is a required property")
    params.reject_unknown(body, {"cache"}, "cache")
    cache = body["cache"]
    if not isinstance(cache, list) or not cache:
        raise BadRequest(f"Invalid input for field/attribute cache. Value: {cache!r}. is too short")
    image_ids = []
    for item in cache:
        if not isinstance(item, dict) or "id" not in item:
            raise BadRequest(
                f"Invalid input for field/attribute cache. Value: {item!r}. 'id' is a required property"
            )
        params.reject_unknown(item, {"id"}, "cache")
        image_id = item["id"]
        if not isinstance(image_id, str) or not params.is_uuid_like(image_id):
            raise BadRequest(f"Invalid input for field/attribute id. Value: {image_id!r}. is not a 'uuid'")
        image_ids.append(image_id)
    return image_ids


def request(
    session: Session, ctx: RequestContext, aggregate_id: str, image_ids: list[str]
) -> PrecacheRequest:
    """Admin only. The aggregate id must be an integer (400) of an aggregate that exists (404);
    no image twice (400); each image must exist (400, as Nova answers an image its Glance does
    not know). Starts the job; returns the request with its job id."""
    ctx.require_admin()
    number = params.integer_id(aggregate_id)
    if len(set(image_ids)) != len(image_ids):
        raise BadRequest("Duplicate images in request")
    aggregate = aggregates.get_aggregate(session, ctx, str(number))
    precache.require_images(session, ctx, image_ids)
    job_id = precache.start(session, ctx.request_id, aggregate.hosts, image_ids, aggregate_id=number)
    return PrecacheRequest(number, aggregate.aggregate.uuid, tuple(aggregate.hosts), tuple(image_ids), job_id)
