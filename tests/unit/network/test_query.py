"""Neutron's list query over rendered resources: filters, projection, tags, sorting, paging."""

from __future__ import annotations

from typing import Any

import pytest

from kumo.network import query
from kumo.network.errors import InvalidInput

FILTERABLE = frozenset({"id", "name", "shared", "network_id", "fixed_ips", "tags", "security_groups"})
ITEMS: list[dict[str, Any]] = [
    {"id": "a", "name": "net1", "shared": False, "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.2"}],
     "tags": ["x"], "security_groups": ["g1"]},
    {"id": "b", "name": "net2", "shared": True, "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.3"}],
     "tags": ["x", "y"], "security_groups": []},
    {"id": "c", "name": "net1", "shared": False, "fixed_ips": [], "tags": [],
     "security_groups": ["g1", "g2"]},
]  # fmt: skip


def run(params: list[tuple[str, str]]) -> dict[str, Any]:
    return query.apply(
        ITEMS, query.parse(params, FILTERABLE), "http://h/networking/v2.0/networks", "networks"
    )


def ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["networks"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([], ["a", "b", "c"]),
        ([("name", "net1")], ["a", "c"]),
        ([("id", "a"), ("id", "b")], ["a", "b"]),  # a repeated parameter is an OR
        ([("name", "net1"), ("id", "c")], ["c"]),  # different parameters are an AND
        ([("shared", "True")], ["b"]),
        ([("shared", "false")], ["a", "c"]),
        ([("fixed_ips", "ip_address=10.0.0.3")], ["b"]),
        ([("fixed_ips", "subnet_id=s1")], ["a", "b"]),
        ([("security_groups", "g2")], ["c"]),
        ([("tags", "x,y")], ["b"]),
        ([("tags-any", "y")], ["b"]),
        ([("not-tags-any", "x")], ["c"]),
        ([("sort_key", "name"), ("sort_dir", "desc")], ["b", "a", "c"]),
        ([("limit", "2"), ("marker", "a")], ["b", "c"]),
    ],
)
def test_filters(params: list[tuple[str, str]], expected: list[str]) -> None:
    assert ids(run(params)) == expected


def test_fields_project_and_a_full_page_links_the_next() -> None:
    body = run([("fields", "id"), ("fields", "name"), ("limit", "1")])
    assert body["networks"] == [{"id": "a", "name": "net1"}]
    assert body["networks_links"] == [
        {"rel": "next", "href": "http://h/networking/v2.0/networks?limit=1&marker=a"}
    ]
    assert "networks_links" not in run([("limit", "3")])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([("colour", "red")], "colour is an invalid filter"),
        ([("limit", "-1")], "not a valid limit"),
        ([("sort_dir", "up")], "invalid value for sort_dir"),
        ([("sort_key", "colour")], "invalid attribute for sort_key"),
    ],
)
def test_bad_queries_are_invalid_input(params: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        query.parse(params, FILTERABLE)
