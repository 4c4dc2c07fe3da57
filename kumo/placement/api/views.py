"""Placement response bodies, per microversion."""

from __future__ import annotations

from typing import Any

from kumo.placement.api.allocations import ConsumerAllocations
from kumo.placement.api.microversion import Version, max_version, min_version
from kumo.placement.api.providers import Provider
from kumo.placement.candidates import BodyShape, Candidate

# Links and Location headers are relative to the service root, as Placement mounted at the root
# of its endpoint answers them: osc-placement follows Location by appending it to the endpoint.
PREFIX = ""


def versions() -> dict[str, Any]:
    return {
        "versions": [
            {
                "id": "v1.0",
                "max_version": str(max_version()),
                "min_version": str(min_version()),
                "status": "CURRENT",
                "links": [{"rel": "self", "href": ""}],
            }
        ]
    }


def provider_url(uuid: str) -> str:
    return f"{PREFIX}/resource_providers/{uuid}"


def provider(p: Provider, version: Version) -> dict[str, Any]:
    url = provider_url(p.uuid)
    rels = ["inventories", "usages"]
    rels += ["aggregates"] if version.at_least(1) else []
    rels += ["traits"] if version.at_least(6) else []
    rels += ["allocations"] if version.at_least(11) else []
    body: dict[str, Any] = {
        "uuid": p.uuid,
        "name": p.name,
        "generation": p.generation,
        "links": [{"rel": "self", "href": url}] + [{"rel": rel, "href": f"{url}/{rel}"} for rel in rels],
    }
    if version.at_least(14):
        body["parent_provider_uuid"] = p.parent_uuid
        body["root_provider_uuid"] = p.root_uuid
    return body


def providers(items: list[Provider], version: Version) -> dict[str, Any]:
    return {"resource_providers": [provider(p, version) for p in items]}


def inventories(generation: int, records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"inventories": records, "resource_provider_generation": generation}


def inventory(generation: int, record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "resource_provider_generation": generation}


def consumer_allocations(found: ConsumerAllocations, version: Version) -> dict[str, Any]:
    body: dict[str, Any] = {
        "allocations": {
            uuid: {"generation": generation, "resources": resources}
            for uuid, (generation, resources) in found.by_provider.items()
        }
    }
    if found.by_provider and version.at_least(12):
        body["project_id"] = found.state.project_id
        body["user_id"] = found.state.user_id
        if version.at_least(28):
            body["consumer_generation"] = found.state.generation
    return body


def provider_allocations(
    generation: int, allocations: dict[str, tuple[int, dict[str, int]]], version: Version
) -> dict[str, Any]:
    by_consumer: dict[str, Any] = {}
    for consumer, (consumer_generation, resources) in allocations.items():
        entry: dict[str, Any] = {"resources": resources}
        if version.at_least(28):
            entry["consumer_generation"] = consumer_generation
        by_consumer[consumer] = entry
    return {"allocations": by_consumer, "resource_provider_generation": generation}


def resource_class(name: str) -> dict[str, Any]:
    return {"name": name, "links": [{"rel": "self", "href": f"{PREFIX}/resource_classes/{name}"}]}


def candidates_shape(version: Version) -> BodyShape:
    """What GET /allocation_candidates' body holds at `version` (candidates_body builds it)."""
    return BodyShape(
        all_resources=version.at_least(27),
        as_object=version.at_least(12),
        with_mappings=version.at_least(34),
        with_traits=version.at_least(17),
        with_tree=version.at_least(29),
    )


def candidates(found: list[Candidate], version: Version) -> dict[str, Any]:
    """The body of GET /allocation_candidates. One pass, the microversion decided once: a page
    holds 1,000 candidates. (On PostgreSQL the route has the database build the same body:
    kumo.placement.candidates.candidates_body.)"""
    as_object, with_mappings = version.at_least(12), version.at_least(34)
    with_traits, with_tree = version.at_least(17), version.at_least(29)
    requests: list[dict[str, Any]] = []
    summaries: dict[str, Any] = {}
    for c in found:
        request: dict[str, Any] = (
            {"allocations": {c.uuid: {"resources": c.allocations}}}
            if as_object
            else {"allocations": [{"resource_provider": {"uuid": c.uuid}, "resources": c.allocations}]}
        )
        if with_mappings:
            request["mappings"] = c.mappings
        requests.append(request)
        summary: dict[str, Any] = {"resources": c.resources}
        if with_traits:
            summary["traits"] = c.traits
        if with_tree:
            summary["parent_provider_uuid"] = c.parent_uuid
            summary["root_provider_uuid"] = c.root_uuid
        summaries[c.uuid] = summary
    return {"allocation_requests": requests, "provider_summaries": summaries}
