"""Nova's extension bodies (tempest's list_extensions schema: every field required)."""

from __future__ import annotations

from typing import Any

from kumo.compute.extensions import NAMESPACE, UPDATED, Extension


def show(extension: Extension) -> dict[str, Any]:
    return {
        "alias": extension.alias,
        "name": extension.name,
        "description": extension.description,
        "namespace": NAMESPACE,
        "updated": UPDATED,
        "links": [],
    }


def index(extensions: tuple[Extension, ...]) -> dict[str, Any]:
    return {"extensions": [show(extension) for extension in extensions]}
