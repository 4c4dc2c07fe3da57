"""Server tags as values: Nova's limits and the four list filters (kumo/compute/tags.py)."""

from __future__ import annotations

import pytest

from kumo.compute.tags import TagFilter, tag_problem, validate_tags
from kumo.errors import BadRequest


@pytest.mark.parametrize(
    ("tag", "valid"),
    [
        ("a", True),
        ("x" * 60, True),
        ("with space", True),
        ("", False),
        ("x" * 61, False),
        ("a,b", False),
        ("a/b", False),
        (5, False),
        (None, False),
        ("a\nb", False),
    ],
)
def test_one_tag(tag: object, valid: bool) -> None:
    assert (tag_problem(tag) is None) == valid


def test_a_list_of_tags() -> None:
    assert validate_tags(["b", "a", "b"]) == ["b", "a"]
    assert validate_tags([str(i) for i in range(50)]) == [str(i) for i in range(50)]
    for bad in ([str(i) for i in range(51)], "a", ["ok", ""], {"a": 1}):
        with pytest.raises(BadRequest):
            validate_tags(bad)


@pytest.mark.parametrize(
    ("query", "held", "match"),
    [
        ({}, [], True),
        ({"tags": "a,b"}, ["a", "b", "c"], True),
        ({"tags": "a,b"}, ["a"], False),
        ({"tags-any": "a,z"}, ["a"], True),
        ({"tags-any": "y,z"}, ["a"], False),
        ({"not-tags": "a,b"}, ["a"], True),
        ({"not-tags": "a,b"}, ["a", "b"], False),
        ({"not-tags-any": "a,b"}, ["c"], True),
        ({"not-tags-any": "a,b"}, ["b", "c"], False),
        ({"tags": "a", "not-tags-any": "b"}, ["a"], True),
        ({"tags": "a", "not-tags-any": "b"}, ["a", "b"], False),
        ({"tags": ",,"}, [], True),  # empty items are no tags
    ],
)
def test_filters(query: dict[str, str], held: list[str], match: bool) -> None:
    assert TagFilter.parse(query).matches(held) == match
