"""Flavor bodies: the index entry (id, name, links), the detail shape, and access lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kumo.compute.flavors import DESCRIPTION_VERSION, EXTRA_SPECS_VERSION
from kumo.compute.microversion import Microversion
from kumo.compute.models import Flavor, FlavorAccess
from kumo.compute.views import page_links, resource_links


def summary(flavor: Flavor, mv: Microversion, base_url: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": flavor.id,
        "name": flavor.name,
        "links": resource_links(base_url, "flavors", flavor.id),
    }
    if mv.at_least(DESCRIPTION_VERSION):
        body["description"] = flavor.description
    return body


def detail(flavor: Flavor, mv: Microversion, base_url: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": flavor.id,
        "name": flavor.name,
        "ram": flavor.ram,
        "disk": flavor.disk,
        # Before 2.75 Nova answers "" for no swap, from it 0.
        "swap": flavor.swap or (0 if mv.at_least("2.75") else ""),
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral,
        "OS-FLV-DISABLED:disabled": False,
        "vcpus": flavor.vcpus,
        "os-flavor-access:is_public": flavor.is_public,
        "rxtx_factor": flavor.rxtx_factor or "",
        "links": resource_links(base_url, "flavors", flavor.id),
    }
    if mv.at_least(DESCRIPTION_VERSION):
        body["description"] = flavor.description
    if mv.at_least(EXTRA_SPECS_VERSION):
        body["extra_specs"] = dict(flavor.extra_specs or {})
    return body


def show(flavor: Flavor, mv: Microversion, base_url: str) -> dict[str, Any]:
    return {"flavor": detail(flavor, mv, base_url)}


def index(
    flavors: Sequence[Flavor],
    mv: Microversion,
    base_url: str,
    *,
    detailed: bool,
    limit: int | None,
    query: Mapping[str, str],
) -> dict[str, Any]:
    build = detail if detailed else summary
    body: dict[str, Any] = {"flavors": [build(f, mv, base_url) for f in flavors]}
    links = page_links(
        base_url, "flavors/detail" if detailed else "flavors", query, list(flavors), limit, lambda f: f.id
    )
    if links:
        body["flavors_links"] = links
    return body


def extra_specs(specs: Mapping[str, str]) -> dict[str, Any]:
    return {"extra_specs": dict(specs)}


def access(rows: Sequence[FlavorAccess]) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": r.flavor_id, "tenant_id": r.project_id} for r in rows]}
