"""The tag list filters servers and projects share (kumo/tags.py)."""

from __future__ import annotations

import pytest

from kumo.tags import TagFilter


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


def test_an_empty_filter_is_false() -> None:
    assert not TagFilter.parse({})
    assert TagFilter.parse({"not-tags": "a"})
