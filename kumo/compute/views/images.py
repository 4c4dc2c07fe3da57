"""Nova's image bodies (tempest's get_image / list_images / list_images_details schemas): Nova's
status and progress for each Glance status, metadata from the extra properties, the size, the
server a snapshot was taken of, and links (self, bookmark, and the Glance alternate)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kumo.image.models import Image

_STATUS = {
    "active": "ACTIVE",
    "queued": "SAVING",
    "saving": "SAVING",
    "importing": "SAVING",
    "uploading": "SAVING",
    "deleted": "DELETED",
    "pending_delete": "DELETED",
    "killed": "ERROR",
}
_PROGRESS = {"queued": 25, "saving": 50, "active": 100}
_TRUE = ("1", "t", "true", "on", "y", "yes")


def _time(moment: dt.datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def links(base: str, image_id: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{base}/compute/v2.1/images/{image_id}"},
        {"rel": "bookmark", "href": f"{base}/compute/images/{image_id}"},
        {
            "rel": "alternate",
            "type": "application/vnd.openstack.image",
            "href": f"{base}/image/images/{image_id}",
        },
    ]


def brief(image: Image, base: str) -> dict[str, Any]:
    return {"id": image.id, "name": image.name, "links": links(base, image.id)}


def show(image: Image, base: str) -> dict[str, Any]:
    metadata = dict(image.properties or {})
    body: dict[str, Any] = {
        "id": image.id,
        "name": image.name,
        "minRam": int(image.min_ram or 0),
        "minDisk": int(image.min_disk or 0),
        "metadata": metadata,
        "created": _time(image.created_at),
        "updated": _time(image.updated_at),
        "status": _STATUS.get(image.status, "UNKNOWN"),
        "progress": _PROGRESS.get(image.status, 0),
        "OS-EXT-IMG-SIZE:size": image.size,
        "links": links(base, image.id),
    }
    server = metadata.get("instance_uuid")
    if isinstance(server, str):
        body["server"] = {
            "id": server,
            "links": [
                {"rel": "self", "href": f"{base}/compute/v2.1/servers/{server}"},
                {"rel": "bookmark", "href": f"{base}/compute/servers/{server}"},
            ],
        }
    disk_config = metadata.get("auto_disk_config")
    if isinstance(disk_config, str):
        body["OS-DCF:diskConfig"] = "AUTO" if disk_config.strip().lower() in _TRUE else "MANUAL"
    return body


def page(images: list[Image], base: str, detailed: bool, next_href: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"images": [show(i, base) if detailed else brief(i, base) for i in images]}
    if next_href is not None:
        body["images_links"] = [{"rel": "next", "href": next_href}]
    return body
