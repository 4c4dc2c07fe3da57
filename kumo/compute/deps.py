"""FastAPI dependencies of compute's routes alone (those every service shares: kumo.api.deps)."""

from __future__ import annotations

from fastapi import Request

from kumo.compute import microversion as mv


async def microversion(request: Request) -> mv.Microversion:
    """The request's compute microversion (kept on request.state for the views)."""
    version = mv.parse({k.lower(): v for k, v in request.headers.items()})
    request.state.microversion = version
    return version
