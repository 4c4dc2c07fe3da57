"""GET /extensions[/{alias}]: Nova's fixed extension list, for any authenticated user."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from kumo.api.context import RequestContext
from kumo.api.deps import context
from kumo.compute import extensions
from kumo.compute.views import extensions as views

router = APIRouter(prefix="/compute")


@router.get("/v2.1/extensions")
def list_extensions(_ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    return views.index(extensions.list_extensions())


@router.get("/v2.1/extensions/{alias}")
def show_extension(alias: str, _ctx: RequestContext = Depends(context)) -> dict[str, Any]:
    return {"extension": views.show(extensions.get_extension(alias))}
