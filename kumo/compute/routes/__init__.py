"""Nova v2.1 route table: one module per resource (each router has prefix="/compute"), each
handler a thin parse → authorize → domain call → view."""

from __future__ import annotations

import importlib

from fastapi import APIRouter

_MODULES = (
    "versions",
    "servers",
    "server_actions",
    "instance_actions",
    "flavors",
    "keypairs",
    "aggregates",
    "availability_zones",
    "hypervisors",
    "services",
    "server_groups",
    "quotas",
)


def build_router() -> APIRouter:
    router = APIRouter()
    for name in _MODULES:
        try:
            module = importlib.import_module(f"kumo.compute.routes.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"kumo.compute.routes.{name}":
                continue  # resource not built yet
            raise
        router.include_router(module.router)
    return router
