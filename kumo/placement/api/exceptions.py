"""Placement's error codes (the `code` of its error bodies) on kumo's exception tree."""

from __future__ import annotations

from kumo.errors import BadRequest, Conflict, NotAcceptable

CONCURRENT_UPDATE = "placement.concurrent_update"


class ConcurrentUpdate(Conflict):
    code = CONCURRENT_UPDATE


class DuplicateName(Conflict):
    code = "placement.duplicate_name"


class ProviderInUse(Conflict):
    code = "placement.resource_provider.inuse"


class CannotDeleteParent(Conflict):
    code = "placement.resource_provider.cannot_delete_parent"


class InventoryInUse(Conflict):
    code = "placement.inventory.inuse"


class BadQueryValue(BadRequest):
    code = "placement.query.bad_value"


class MissingQueryValue(BadRequest):
    code = "placement.query.missing_value"


class DuplicateQueryKey(BadRequest):
    code = "placement.query.duplicate_key"


class VersionNotAcceptable(NotAcceptable):
    """406 carrying the supported range, which osc-placement reads to negotiate."""

    def __init__(self, message: str, min_version: str, max_version: str) -> None:
        super().__init__(message)
        self.extra = {"min_version": min_version, "max_version": max_version}
