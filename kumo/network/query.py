"""Neutron's list query over rendered resources, pure: exact-match filters (a repeated
parameter is an OR), `fields=` projection, `tags`/`tags-any`/`not-tags`/`not-tags-any`,
`sort_key`/`sort_dir` and `limit`/`marker` paging with a `next` link."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kumo.network.errors import InvalidInput
from kumo.validation import MAX_INT, int_text

_ALWAYS = frozenset({"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"})
_TAGS = frozenset({"tags", "tags-any", "not-tags", "not-tags-any"})


@dataclass
class ListQuery:
    filters: dict[str, list[str]] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    tags: dict[str, set[str]] = field(default_factory=dict)
    limit: int | None = None
    marker: str | None = None
    sort_keys: list[tuple[str, bool]] = field(default_factory=list)  # (key, descending)


def parse(params: Sequence[tuple[str, str]], filterable: frozenset[str]) -> ListQuery:
    """Unknown filter attributes are a 400, as Neutron's filter validation does."""
    query = ListQuery()
    sort_dirs: list[str] = []
    for name, value in params:
        if name == "fields":
            query.fields.append(value)
        elif name == "limit":
            limit = int_text(value, minimum=0, maximum=MAX_INT)
            if limit is None:
                raise InvalidInput(f"'{value}' is not a valid limit: a non-negative integer is expected")
            query.limit = limit
        elif name == "marker":
            query.marker = value
        elif name == "sort_key":
            if value not in filterable:
                raise InvalidInput(f"{value} is an invalid attribute for sort_key")
            query.sort_keys.append((value, False))
        elif name == "sort_dir":
            if value not in ("asc", "desc"):
                raise InvalidInput(
                    f"{value} is an invalid value for sort_dir, valid values are 'asc' and 'desc'"
                )
            sort_dirs.append(value)
        elif name in _TAGS:
            query.tags.setdefault(name, set()).update(t for t in value.split(",") if t)
        elif name in _ALWAYS:
            continue
        elif name in filterable:
            query.filters.setdefault(name, []).append(value)
        else:
            raise InvalidInput(f"{name} is an invalid filter")
    query.sort_keys = [
        (key, i < len(sort_dirs) and sort_dirs[i] == "desc") for i, (key, _) in enumerate(query.sort_keys)
    ]
    return query


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _matches(item: dict[str, Any], name: str, wanted: list[str]) -> bool:
    value = item.get(name)
    if name == "fixed_ips":  # fixed_ips=ip_address=10.0.0.5 / fixed_ips=subnet_id=...
        for want in wanted:
            key, _, expected = want.partition("=")
            if any(_text(ip.get(key)) == expected for ip in value or ()):
                return True
        return False
    if isinstance(value, list):
        return any(_text(v) in wanted for v in value)
    if isinstance(value, bool):
        return _text(value) in {w.lower() for w in wanted}
    return _text(value) in wanted


def _tags_match(item: dict[str, Any], tags: dict[str, set[str]]) -> bool:
    have = set(item.get("tags") or ())
    return (
        tags.get("tags", set()) <= have
        and (not tags.get("tags-any") or bool(have & tags["tags-any"]))
        and not (tags.get("not-tags") and tags["not-tags"] <= have)
        and not have & tags.get("not-tags-any", set())
    )


def apply(items: list[dict[str, Any]], query: ListQuery, url: str, collection: str) -> dict[str, Any]:
    """`{collection: [...]}`, and `<collection>_links` when a page is full."""
    chosen = [
        item
        for item in items
        if all(_matches(item, name, wanted) for name, wanted in query.filters.items())
        and _tags_match(item, query.tags)
    ]
    for key, descending in reversed(query.sort_keys):
        chosen.sort(key=lambda item: (item.get(key) is None, _text(item.get(key))), reverse=descending)
    if query.marker is not None:
        ids = [item["id"] for item in chosen]
        chosen = chosen[ids.index(query.marker) + 1 :] if query.marker in ids else []
    body: dict[str, Any] = {}
    if query.limit and len(chosen) > query.limit:
        chosen = chosen[: query.limit]
        next_href = f"{url}?limit={query.limit}&marker={chosen[-1]['id']}"
        body[f"{collection}_links"] = [{"rel": "next", "href": next_href}]
    if query.fields:
        chosen = [{k: v for k, v in item.items() if k in query.fields} for item in chosen]
    body[collection] = chosen
    return body


def project_fields(item: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k in fields} if fields else item
