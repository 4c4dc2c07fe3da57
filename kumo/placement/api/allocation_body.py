"""A consumer's allocations as a request body states them, in the shape of its microversion:
read by the route table (kumo.placement.api.routes) and the claim fast lane
(kumo.placement.api.fast) by the same rules, so both refuse the same bodies with the same errors."""

from __future__ import annotations

from typing import Any

from kumo.errors import BadRequest
from kumo.placement.api import params
from kumo.placement.api.allocations import AllocationWrite
from kumo.placement.api.microversion import Version


def allocation_write(
    consumer: str, body: Any, v: Version, where: str, *, in_post: bool = False
) -> AllocationWrite:
    """One consumer's allocations in the shape of microversion `v`."""
    if not v.at_least(12):
        data = params.obj(body, ["allocations"] + (["project_id", "user_id"] if v.at_least(8) else []))
        items = data["allocations"]
        if not isinstance(items, list) or not items:
            raise params.invalid(f"{where}.allocations must be a non-empty array")
        allocations: dict[str, dict[str, int]] = {}
        for item in items:
            entry = params.obj(item, ["resource_provider", "resources"], where=f"{where}.allocations[]")
            rp = params.obj(entry["resource_provider"], ["uuid"], where="resource_provider")
            allocations[params.uuid_string(rp["uuid"], "uuid")] = params.resources(
                entry["resources"], "resources"
            )
    else:
        required = ["allocations", "project_id", "user_id"] + (
            ["consumer_generation"] if v.at_least(28) else []
        )
        data = params.obj(body, required, ["mappings"] if v.at_least(34) else [], where)
        if not isinstance(data["allocations"], dict) or (
            not data["allocations"] and not (in_post or v.at_least(28))
        ):
            raise params.invalid(f"{where}.allocations must be a non-empty object")
        allocations = {}
        for rp_uuid, entry in data["allocations"].items():
            entry = params.obj(entry, ["resources"], ["generation"], f"allocations.{rp_uuid}")
            allocations[params.uuid_string(rp_uuid, "allocations")] = params.resources(
                entry["resources"], "resources"
            )
    project = data.get("project_id")
    user = data.get("user_id")
    return AllocationWrite(
        consumer=consumer,
        allocations=allocations,
        project_id=params.string(project, "project_id") if project is not None else None,
        user_id=params.string(user, "user_id") if user is not None else None,
        generation=params.nullable_integer(data.get("consumer_generation"), "consumer_generation"),
        check_generation=v.at_least(28),
    )


def consumer_uuid(consumer: str) -> str:
    try:
        return params.uuid_string(consumer, "consumer_uuid")
    except BadRequest as exc:
        raise BadRequest(f"Malformed consumer_uuid: {consumer}") from exc
