"""What every Placement answer carries, from the route table (kumo.placement.api.routes) and
the claim fast lane (kumo.placement.api.fast) alike: the error body and the microversion headers."""

from __future__ import annotations

from email.utils import formatdate

from fastapi import Response

from kumo.api.errors import error_response
from kumo.errors import KumoError
from kumo.placement.api.microversion import Version


def placement_error(path: str, exc: KumoError) -> Response:
    code, extra = getattr(exc, "code", None), getattr(exc, "extra", None)
    return error_response(path, exc.status, exc.message, exc.kind, code, extra)


def finish(response: Response, version: Version | None, method: str) -> Response:
    """The microversion headers of every Placement answer (and 1.15's cache headers)."""
    if version is not None:
        response.headers["openstack-api-version"] = f"placement {version}"
        response.headers["vary"] = "openstack-api-version"
        if version.at_least(15) and method == "GET" and response.status_code == 200:
            response.headers["cache-control"] = "no-cache"
            response.headers["last-modified"] = formatdate(usegmt=True)
    return response


def no_content(status: int = 204, location: str | None = None) -> Response:
    return Response(status_code=status, headers={"location": location} if location else None)
