"""Migration records as Nova shows them: GET /os-migrations and GET /servers/{id}/migrations,
per microversion (2.23: migration_type and links; 2.59: uuid; 2.80: user_id and project_id)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kumo.compute.microversion import Microversion
from kumo.compute.models import Migration
from kumo.compute.views import API_PREFIX, BOOKMARK_PREFIX, isotime, page_links

_IN_PROGRESS = ("queued", "preparing", "running")


def _common(row: Migration, version: Microversion) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.id,
        "created_at": isotime(row.created_at),
        "updated_at": isotime(row.updated_at),
        "status": row.status,
        "source_compute": row.source_compute,
        "source_node": row.source_compute,
        "dest_compute": row.dest_compute,
        "dest_node": row.dest_compute,
        "dest_host": row.dest_compute,
    }
    if version.at_least("2.59"):
        body["uuid"] = row.uuid
    if version.at_least("2.80"):
        body["user_id"] = row.user_id
        body["project_id"] = row.project_id
    return body


def _links(base_url: str, row: Migration) -> list[dict[str, str]]:
    path = f"servers/{row.instance_uuid}/migrations/{row.id}"
    base = base_url.rstrip("/")
    return [
        {"rel": "self", "href": f"{base}{API_PREFIX}/{path}"},
        {"rel": "bookmark", "href": f"{base}{BOOKMARK_PREFIX}/{path}"},
    ]


def listed(row: Migration, version: Microversion, base_url: str) -> dict[str, Any]:
    """One entry of GET /os-migrations (flavor ids are null: kumo's flavors have string ids)."""
    body = _common(row, version)
    body.update(
        {"instance_uuid": row.instance_uuid, "old_instance_type_id": None, "new_instance_type_id": None}
    )
    if version.at_least("2.23"):
        body["migration_type"] = row.migration_type
        if row.migration_type == "live-migration" and row.status in _IN_PROGRESS:
            body["links"] = _links(base_url, row)
    return body


def index(
    rows: Sequence[Migration],
    version: Microversion,
    base_url: str,
    limit: int | None,
    params: Mapping[str, str],
) -> dict[str, Any]:
    """GET /os-migrations: the entries, and from 2.59 `migrations_links` when the page is full."""
    body: dict[str, Any] = {"migrations": [listed(row, version, base_url) for row in rows]}
    links = page_links(base_url, "os-migrations", params, list(rows), limit, lambda m: m.uuid)
    if links:
        body["migrations_links"] = links
    return body


def of_server(row: Migration, version: Microversion) -> dict[str, Any]:
    """One entry of GET /servers/{id}/migrations (2.23+; progress counters kumo does not track)."""
    body = _common(row, version)
    body["server_uuid"] = row.instance_uuid
    for key in (
        "memory_total_bytes",
        "memory_processed_bytes",
        "memory_remaining_bytes",
        "disk_total_bytes",
        "disk_processed_bytes",
        "disk_remaining_bytes",
    ):
        body[key] = None
    return body
