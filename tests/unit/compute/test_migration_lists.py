"""os-migrations' query rules per microversion (kumo.compute.migration_lists.parse_query)."""

from __future__ import annotations

import datetime as dt

import pytest

from kumo.compute.microversion import Microversion
from kumo.compute.migration_lists import MigrationQuery, parse_query
from kumo.compute.params import MAX_LIMIT
from kumo.errors import BadRequest

SINCE, BEFORE = "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"


def mv(text: str) -> Microversion:
    major, minor = text.split(".")
    return Microversion(int(major), int(minor))


@pytest.mark.parametrize(
    ("version", "items", "expected"),
    [
        # before 2.59 what Nova's schema does not know is ignored, paging too
        (
            "2.1",
            [("host", "h1"), ("nonsense", "x"), ("limit", "1"), ("marker", "m")],
            MigrationQuery({"host": "h1"}),
        ),
        ("2.58", [("changes-since", SINCE), ("user_id", "u")], MigrationQuery({})),
        ("2.1", [("status", "a"), ("status", "b")], MigrationQuery({"status": "b"})),
        # from 2.59: a page of at most MAX_LIMIT, changes-since read
        ("2.59", [], MigrationQuery({}, MAX_LIMIT)),
        (
            "2.59",
            [("limit", "2"), ("marker", "m1"), ("changes-since", SINCE), ("hidden_host", "x")],
            MigrationQuery(
                {"hidden_host": "x"},
                2,
                "m1",
                dt.datetime(2026, 1, 1),
                None,
                {"limit": "2", "marker": "m1", "changes-since": SINCE, "hidden_host": "x"},
            ),
        ),
        (
            "2.66",
            [("changes-before", BEFORE)],
            MigrationQuery({}, MAX_LIMIT, None, None, dt.datetime(2026, 2, 1), {"changes-before": BEFORE}),
        ),
        (
            "2.80",
            [("user_id", "u"), ("project_id", "p")],
            MigrationQuery(
                {"user_id": "u", "project_id": "p"}, MAX_LIMIT, params={"user_id": "u", "project_id": "p"}
            ),
        ),
    ],
)
def test_parse_query(version: str, items: list[tuple[str, str]], expected: MigrationQuery) -> None:
    assert parse_query(items, mv(version)) == expected


@pytest.mark.parametrize(
    ("version", "items"),
    [
        ("2.59", [("nonsense", "x")]),
        ("2.59", [("changes-before", BEFORE)]),  # 2.66's
        ("2.65", [("changes-before", BEFORE)]),
        ("2.79", [("user_id", "u")]),  # 2.80's
        ("2.79", [("project_id", "p")]),
        ("2.59", [("limit", "-1")]),
        ("2.59", [("limit", "two")]),
        ("2.59", [("changes-since", "yesterday")]),
        ("2.66", [("changes-since", BEFORE), ("changes-before", SINCE)]),  # since after before
    ],
)
def test_parse_query_refuses(version: str, items: list[tuple[str, str]]) -> None:
    with pytest.raises(BadRequest):
        parse_query(items, mv(version))
