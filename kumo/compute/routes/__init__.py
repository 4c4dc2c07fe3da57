"""Nova v2.1 route table: one module per resource (each router has prefix="/compute"), each
handler a thin parse → authorize → domain call → view."""

from __future__ import annotations

from fastapi import APIRouter

from kumo.compute.routes import (
    aggregates,
    availability_zones,
    consoles,
    extensions,
    flavors,
    host_labels,
    hypervisors,
    image_precache,
    images,
    instance_actions,
    keypairs,
    legacy_hosts,
    migrations,
    quotas,
    server_actions,
    server_groups,
    server_networks,
    server_tags,
    servers,
    services,
    usage,
    versions,
)

_MODULES = (
    versions,
    servers,
    server_networks,
    server_actions,
    server_tags,
    instance_actions,
    flavors,
    keypairs,
    aggregates,
    availability_zones,
    hypervisors,
    services,
    server_groups,
    quotas,
    host_labels,
    usage,
    migrations,
    consoles,
    extensions,
    legacy_hosts,
    image_precache,
    images,
)


def build_router() -> APIRouter:
    router = APIRouter()
    for module in _MODULES:
        router.include_router(module.router)
    router.include_router(consoles.proxy_router)  # the serial console's websocket proxy
    return router
