"""Project tags as values: Keystone's limits (the list filters: tests/unit/test_tags.py)."""

from __future__ import annotations

from typing import Any

import pytest

from kumo.errors import BadRequest
from kumo.identity import project_tags


@pytest.mark.parametrize(
    "tags",
    [
        "a",
        ["a,b"],
        ["a/b"],
        [""],
        ["x" * 256],
        [3],
        ["d", "d"],
        [f"t{i}" for i in range(81)],
    ],
)
def test_invalid_tag_lists(tags: Any) -> None:
    with pytest.raises(BadRequest):
        project_tags.validate_tags(tags)


def test_valid_tag_lists_keep_their_order() -> None:
    assert project_tags.validate_tags(["b", "a", "y" * 255]) == ["b", "a", "y" * 255]
    assert project_tags.validate_tags([" ", "  "]) == [" ", "  "]  # Keystone: minLength 1 only
    assert len(project_tags.validate_tags([f"t{i}" for i in range(80)])) == 80


def test_adding_a_tag() -> None:
    assert project_tags.add_tag(["a"], "b") == ["a", "b"]
    assert project_tags.add_tag(["a"], "a") == ["a"]
    with pytest.raises(BadRequest):
        project_tags.add_tag([f"t{i}" for i in range(80)], "one-more")
    with pytest.raises(BadRequest):
        project_tags.add_tag([], "a,b")
