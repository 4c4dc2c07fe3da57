"""Nova response builders: plain functions from domain objects to the dicts each microversion
returns. One module per resource; the helpers here are shared."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

API_PREFIX = "/compute/v2.1"
BOOKMARK_PREFIX = "/compute"


def isotime(value: dt.datetime | None) -> str | None:
    """Nova's serialisation of a naive UTC datetime: 2012-10-29T13:42:02.000000."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def resource_links(base_url: str, collection: str, resource_id: str | int) -> list[dict[str, str]]:
    """The self (versioned) and bookmark (unversioned) links Nova puts on flavors and servers."""
    base = base_url.rstrip("/")
    return [
        {"rel": "self", "href": f"{base}{API_PREFIX}/{collection}/{resource_id}"},
        {"rel": "bookmark", "href": f"{base}{BOOKMARK_PREFIX}/{collection}/{resource_id}"},
    ]


def next_link(
    base_url: str, collection: str, params: Mapping[str, str], marker: str | int
) -> list[dict[str, str]]:
    """The `<collection>_links` entry pointing at the page after `marker`."""
    query = {k: v for k, v in params.items() if k != "marker"}
    query["marker"] = str(marker)
    href = f"{base_url.rstrip('/')}{API_PREFIX}/{collection}?{urlencode(query)}"
    return [{"rel": "next", "href": href}]


def page_links(
    base_url: str,
    collection: str,
    params: Mapping[str, str],
    items: list[Any],
    limit: int | None,
    marker_of: Any,
) -> list[dict[str, str]] | None:
    """Nova adds a next link when a page came back exactly full."""
    if not items or limit is None or len(items) != limit:
        return None
    return next_link(base_url, collection, params, marker_of(items[-1]))
