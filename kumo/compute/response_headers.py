"""The headers on every answer under /compute (Nova's): the request id under Nova's name and the
microversion the request was served at, registered with the API's RequestMiddleware."""

from __future__ import annotations

from kumo.compute import microversion as mv
from kumo.errors import KumoError


def compute_response_headers(headers: dict[str, str], request_id: str) -> list[tuple[bytes, bytes]]:
    """`headers` are the request's, names lowercased. A microversion the request cannot have is
    echoed as the minimum (the route itself refuses the request); this never raises."""
    try:
        version = mv.parse(headers)
    except KumoError:
        version = mv.min_version()
    return [
        (b"x-compute-request-id", request_id.encode()),
        (b"openstack-api-version", f"compute {version}".encode()),
        (b"x-openstack-nova-api-version", str(version).encode()),
        (b"vary", b"OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    ]
