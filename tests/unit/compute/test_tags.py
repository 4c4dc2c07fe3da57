"""Server tags as values: Nova's limits (kumo/compute/tags.py; the list filters: tests/unit/test_tags.py)."""

from __future__ import annotations

import pytest

from kumo.compute.tags import tag_problem, validate_tags
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
