"""Glance's metadata definitions catalog, read-only: kumo defines no namespace, so every
collection is empty and every named namespace is unknown (a 404, as Glance answers one)."""

from __future__ import annotations

from typing import NoReturn

from kumo.api.context import RequestContext
from kumo.errors import NotFound


def namespaces(_ctx: RequestContext) -> list[str]:
    return []


def get_namespace(_ctx: RequestContext, namespace: str) -> NoReturn:
    raise NotFound(f"Metadata definition namespace={namespace} was not found.")
