"""The one ASGI app: identity under /identity, compute under /compute, image under /image,
the agents' internal API under /internal, Prometheus metrics at /metrics."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kumo.api import errors
from kumo.api.middleware import RequestMiddleware
from kumo.compute.routes import build_router as compute_router
from kumo.metrics import fleet_gauges
from kumo.runtime import Runtime


def _optional_router(module: str) -> APIRouter | None:
    try:
        return importlib.import_module(module).router  # type: ignore[no-any-return]
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def create_app(rt: Runtime, background: bool = True) -> FastAPI:
    """`background` starts this worker's scheduler loop and housekeeping threads."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync routes and agents' long polls run in worker threads: allow plenty of them.
        anyio.to_thread.current_default_thread_limiter().total_tokens = 256
        workers = None
        if background:
            from kumo.compute.workers import start_workers

            workers = start_workers(rt)
        try:
            yield
        finally:
            if workers is not None:
                workers.stop(rt)

    app = FastAPI(title="kumo", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = rt
    errors.install(app)
    app.add_middleware(RequestMiddleware)

    from kumo.identity.routes import router as identity_router

    app.include_router(identity_router)
    app.include_router(compute_router())
    # Each router carries its own prefix (/identity, /image, /internal).
    for module in ("kumo.identity.admin_routes", "kumo.image.routes", "kumo.agent.routes"):
        router = _optional_router(module)
        if router is not None:
            app.include_router(router)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        with rt.db.read() as session:
            fleet_gauges(session)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
