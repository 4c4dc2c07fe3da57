"""Parsing of JSON-patch documents and list query parameters (pure functions)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from kumo.errors import BadRequest, UnsupportedMediaType
from kumo.image.service import PatchOp, parse_list_query, parse_patch

V21 = "application/openstack-images-v2.1-json-patch"
V20 = "application/openstack-images-v2.0-json-patch"


def _patch(doc: Any, media_type: str = V21) -> list[PatchOp]:
    return parse_patch(media_type, json.dumps(doc).encode())


@pytest.mark.parametrize(
    ("media_type", "doc", "expected"),
    [
        (V21, [{"op": "replace", "path": "/name", "value": "n"}], [PatchOp("replace", "name", "n")]),
        (V21 + "; charset=UTF-8", [{"op": "remove", "path": "/k"}], [PatchOp("remove", "k")]),
        (V21, [{"op": "add", "path": "/a~1b~0c", "value": "v"}], [PatchOp("add", "a/b~c", "v")]),
        (V21, [{"op": "add", "path": "/k", "value": None}], [PatchOp("add", "k", None)]),
        (V20, [{"add": "/k", "value": "v"}], [PatchOp("add", "k", "v", strict_add=True)]),
        (V20, [{"remove": "/k"}], [PatchOp("remove", "k", strict_add=True)]),
    ],
)
def test_parse_patch(media_type: str, doc: Any, expected: list[PatchOp]) -> None:
    assert parse_patch(media_type, json.dumps(doc).encode()) == expected


@pytest.mark.parametrize(
    ("media_type", "doc"),
    [
        (V21, {"op": "replace", "path": "/name", "value": "n"}),
        (V21, [{"op": "copy", "path": "/name", "from": "/x"}]),
        (V21, [{"op": "replace", "path": "/name"}]),
        (V21, [{"op": "replace", "path": "name", "value": 1}]),
        (V21, [{"op": "replace", "path": "/", "value": 1}]),
        (V21, [{"op": "replace", "path": "/a/b", "value": 1}]),
        (V21, [{"op": "replace", "path": "/a~2", "value": 1}]),
        (V21, ["remove"]),
        (V20, [{"add": "/k", "remove": "/k", "value": "v"}]),
        (V20, [{"op": "add", "path": "/k", "value": "v"}]),
    ],
)
def test_parse_patch_rejects(media_type: str, doc: Any) -> None:
    with pytest.raises(BadRequest):
        parse_patch(media_type, json.dumps(doc).encode())


def test_parse_patch_rejects_other_media_types_and_bad_json() -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_patch("application/json", b"[]")
    with pytest.raises(UnsupportedMediaType):
        parse_patch("", b"[]")
    with pytest.raises(BadRequest):
        parse_patch(V21, b"[{")
    with pytest.raises(BadRequest):
        parse_patch(V21, b"\xff\xfe")


def test_list_query_defaults() -> None:
    query = parse_list_query([])
    assert query.limit == 25 and query.marker is None
    assert query.sort == [("created_at", "desc")]
    assert query.visibility is None and not query.equal and not query.tags and not query.properties


@pytest.mark.parametrize(
    ("params", "sort"),
    [
        ([("sort_key", "name")], [("name", "desc")]),
        (
            [("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc")],
            [("name", "asc"), ("size", "asc")],
        ),
        ([("sort_key", "name,size"), ("sort_dir", "asc,desc")], [("name", "asc"), ("size", "desc")]),
        ([("sort", "name:asc,status")], [("name", "asc"), ("status", "desc")]),
        ([("sort_dir", "asc")], [("created_at", "asc")]),
    ],
)
def test_list_query_sort(params: list[tuple[str, str]], sort: list[tuple[str, str]]) -> None:
    assert parse_list_query(params).sort == sort


def test_list_query_filters() -> None:
    query = parse_list_query(
        [
            ("limit", "5000"),
            ("marker", "m"),
            ("name", 'in:"a","b"'),
            ("status", "active"),
            ("tag", "t1"),
            ("tag", "t2"),
            ("os_distro", "ubuntu"),
            ("protected", "False"),
            ("size_min", "10"),
            ("created_at", "gte:2024-01-02T03:04:05Z"),
            ("member_status", "accepted"),
            ("visibility", "all"),
        ]
    )
    assert query.limit == 1000 and query.marker == "m"
    assert query.equal == {"name": ["a", "b"], "status": ["active"]}
    assert query.tags == ["t1", "t2"] and query.properties == {"os_distro": "ubuntu"}
    assert query.flags == {"protected": False} and query.size_min == 10
    assert query.times == [("created_at", "gte", dt.datetime(2024, 1, 2, 3, 4, 5))]
    assert query.visibility == "all"


@pytest.mark.parametrize(
    "params",
    [
        [("limit", "ten")],
        [("limit", "-1")],
        [("sort_key", "colour")],
        [("sort_dir", "up")],
        [("sort", "name"), ("sort_key", "name")],
        [("sort_key", "a,b"), ("sort_dir", "asc,desc,asc")],
        [("visibility", "everyone")],
        [("status", "sleeping")],
        [("protected", "maybe")],
        [("size_max", "1.5")],
        [("updated_at", "lt:soon")],
    ],
)
def test_list_query_rejects(params: list[tuple[str, str]]) -> None:
    with pytest.raises(BadRequest):
        parse_list_query(params)
