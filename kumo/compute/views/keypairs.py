"""Key pair bodies: the list entry, the create answer and the full show shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kumo.compute.keypairs import TYPE_VERSION
from kumo.compute.microversion import Microversion
from kumo.compute.models import KeyPair
from kumo.compute.views import isotime, page_links


def _base(keypair: KeyPair, mv: Microversion) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": keypair.name,
        "public_key": keypair.public_key,
        "fingerprint": keypair.fingerprint,
    }
    if mv.at_least(TYPE_VERSION):
        body["type"] = keypair.type
    return body


def index(
    keypairs: Sequence[KeyPair], mv: Microversion, base_url: str, limit: int | None, query: Mapping[str, str]
) -> dict[str, Any]:
    body: dict[str, Any] = {"keypairs": [{"keypair": _base(k, mv)} for k in keypairs]}
    links = page_links(base_url, "os-keypairs", query, list(keypairs), limit, lambda k: k.name)
    if links:
        body["keypairs_links"] = links
    return body


def created(keypair: KeyPair, private_key: str | None, mv: Microversion) -> dict[str, Any]:
    body = _base(keypair, mv)
    body["user_id"] = keypair.user_id
    if private_key is not None:
        body["private_key"] = private_key
    return {"keypair": body}


def show(keypair: KeyPair, mv: Microversion) -> dict[str, Any]:
    body = _base(keypair, mv)
    body.update(
        {
            "id": keypair.id,
            "user_id": keypair.user_id,
            "created_at": isotime(keypair.created_at),
            "updated_at": None,
            "deleted": False,
            "deleted_at": None,
        }
    )
    return {"keypair": body}
