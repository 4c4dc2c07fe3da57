"""The one ASGI app, assembled from every service: identity under /identity, compute under
/compute, image under /image, the agents' internal API under /internal, Prometheus metrics at
/metrics, the OpenAPI document of the routes at /openapi.json (`kumo/api/openapi.py`), and the
web dashboard under /dashboard (`kumo/dashboard/`, a client of the others over HTTP).

The top of the house: it imports every service and nothing imports it but the entry points
(kumo.asgi, kumo.server). kumo/api/ holds only the pieces the services themselves import; what
it must know of a service (compute's response headers, baremetal's error headers, the agents'
token header) it is given here."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kumo import wiring
from kumo.agent import routes as agent_routes
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.api import errors, openapi
from kumo.api.edge import EdgeGuard
from kumo.api.middleware import RequestMiddleware
from kumo.baremetal import conductor_routes as baremetal_conductor_routes
from kumo.baremetal import microversion as baremetal_microversion
from kumo.baremetal import routes as baremetal_routes
from kumo.canary import routes as canary_routes
from kumo.canary.metrics import canary_gauges
from kumo.compute.fleet_metrics import fleet_gauges
from kumo.compute.response_headers import compute_response_headers
from kumo.compute.routes import build_router as compute_router
from kumo.compute.workers import start_workers
from kumo.dashboard import routes as dashboard_routes
from kumo.gc_tuning import limit_malloc_arenas, tune_gc
from kumo.identity import admin_routes as identity_admin_routes
from kumo.identity import routes as identity_routes
from kumo.image import routes as image_routes
from kumo.image.store import file_store
from kumo.network import routes as network_routes
from kumo.placement.api import routes as placement_routes
from kumo.placement.api.fast import ClaimFastLane
from kumo.rebalance import microversion as rebalance_microversion
from kumo.rebalance import routes as rebalance_routes
from kumo.rebalance.executor import start_rebalancer
from kumo.rebalance.signal import signal_gauges
from kumo.runtime import Runtime
from kumo.stock import routes as stock_routes

log = logging.getLogger("kumo.api")


def create_app(rt: Runtime, background: bool = True) -> FastAPI:
    """`background` starts this worker's scheduler loop and housekeeping threads."""
    wiring.install()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync routes and agents' long polls run in worker threads: allow plenty of them.
        anyio.to_thread.current_default_thread_limiter().total_tokens = 256
        limit_malloc_arenas()
        tune_gc()
        _stop_waits_on_signals(rt)
        file_store(rt.settings.resolved_image_dir)  # images an older kumo left readable: 0600 now
        workers = rebalancer = None
        if background:
            workers = start_workers(rt)
            rebalancer = start_rebalancer(rt)  # audits and action plans (kumo/rebalance)
        try:
            yield
        finally:
            if rebalancer is not None:
                rebalancer.stop(rt.waker)
            if workers is not None:
                workers.stop(rt)

    # FastAPI's own OpenTelemetry hooks look up providers and environment on every request
    # (about 6 % of the API's CPU in a boot storm); kumo's metrics are its Prometheus ones.
    no_telemetry: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        title="kumo",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry=no_telemetry,
    )
    app.state.runtime = rt
    errors.install(app)
    errors.add_error_headers("/baremetal", baremetal_microversion.headers(None))  # Ironic: on every answer
    errors.add_error_headers("/infra-optim", rebalance_microversion.headers(None))  # Watcher: likewise
    app.add_middleware(ClaimFastLane)  # inside RequestMiddleware: request ids, metrics and logs stay
    app.add_middleware(  # before the fast lane: it reads bodies too
        EdgeGuard,
        max_body_bytes=rt.settings.max_request_body_bytes,
        max_internal_body_bytes=rt.settings.max_internal_body_bytes,
        agent_token=rt.agent_token,
        agent_token_header=AGENT_TOKEN_HEADER,
        body_timeout_seconds=rt.settings.request_body_timeout_seconds,
    )
    app.add_middleware(RequestMiddleware, response_headers={"/compute": compute_response_headers})

    # The route table: each router carries its own prefix.
    for router in (
        agent_routes.router,  # /internal (agents): first, it is the hottest path (heartbeats, polls)
        baremetal_conductor_routes.router,  # /internal/v1/conductors (baremetal conductors)
        identity_routes.router,  # /identity: versions, /v3/auth
        identity_admin_routes.router,  # /identity: projects, users, roles, catalog
        compute_router(),  # /compute
        stock_routes.router,  # /compute/v2.1/os-kumo-stock-requests: a compute API extension
        canary_routes.router,  # /compute/v2.1/os-kumo-canaries: a compute API extension
        image_routes.router,  # /image
        network_routes.router,  # /networking (Neutron's API subset)
        placement_routes.router,  # /placement
        baremetal_routes.router,  # /baremetal (Ironic's API subset)
        rebalance_routes.router,  # /infra-optim (Watcher's API subset: the rebalancer)
    ):
        _add_routes(app, router)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        with rt.db.read() as session:
            fleet_gauges(session, rt.settings.heartbeat_timeout_seconds)
            signal_gauges(session)
            canary_gauges(session)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if rt.settings.dashboard:
        dashboard_routes.install(app, rt.settings)  # /dashboard: a web client of the routes above
    openapi.install(app)
    return app


def _stop_waits_on_signals(rt: Runtime) -> None:
    """On SIGTERM or SIGINT, end the agents' long polls (rt.waker.stop()), then let uvicorn's
    handler stop the server: uvicorn stops only once every request has answered, and a poll
    would otherwise hold it for up to 30 s. Chained in front of the handlers uvicorn installs
    before the lifespan starts (and puts back after it ends); only in the main thread, where
    signals are delivered (a ThreadedServer's stop() wakes the polls itself)."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stopping_then(rt, loop, signal.getsignal(signum)))


def _stopping_then(
    rt: Runtime, loop: asyncio.AbstractEventLoop, previous: Any
) -> Callable[[int, FrameType | None], None]:
    def stop(name: str) -> None:
        if not rt.waker.stopping.is_set():
            log.warning("%s: stopping", name)
        rt.waker.stop()

    def handler(signum: int, frame: FrameType | None) -> None:
        # The handler may interrupt the loop's thread inside a lock that stop() takes: the loop
        # runs stop() as a callback of its own instead.
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop, signal.Signals(signum).name)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:  # no server's handler: the signal's default action
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    return handler


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    """Put `router`'s routes, and those of the routers it includes, straight into the app's
    route table. FastAPI (0.16x) keeps included routers as lazy branches whose effective routes
    it rebuilds (dependency analysis, pydantic adapters) when it thinks the table changed; under
    load py-spy showed that rebuild taking 20-30 % of the API's CPU. Our routers carry their
    full prefix and include one another without options, so the flat table is the same table."""
    for route in router.routes:
        nested = getattr(route, "original_router", None)  # FastAPI's _IncludedRouter
        if isinstance(nested, APIRouter):
            _add_routes(app, nested)
        else:
            app.router.routes.append(route)
