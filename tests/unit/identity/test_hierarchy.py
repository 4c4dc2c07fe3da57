"""Project trees as values: ancestors, subtrees, depth and Keystone's nested id shapes."""

from __future__ import annotations

from kumo.identity import hierarchy

# top ─┬─ mid ── leaf
#      └─ side
# lone
PARENTS: dict[str, str | None] = {"top": None, "mid": "top", "leaf": "mid", "side": "top", "lone": None}


def test_ancestors_walk_up_to_the_top() -> None:
    assert hierarchy.ancestors("leaf", PARENTS) == ["mid", "top"]
    assert hierarchy.ancestors("top", PARENTS) == []
    assert hierarchy.ancestors("unknown", PARENTS) == []


def test_ancestors_stop_on_a_loop() -> None:
    assert hierarchy.ancestors("a", {"a": "b", "b": "a"}) == ["b", "a"]


def test_subtree_is_breadth_first_without_the_project() -> None:
    assert hierarchy.subtree("top", PARENTS) == ["mid", "side", "leaf"]
    assert hierarchy.subtree("leaf", PARENTS) == []


def test_depth() -> None:
    assert [hierarchy.depth(p, PARENTS) for p in ("top", "mid", "leaf", "lone")] == [1, 2, 3, 1]


def test_keystones_nested_ids() -> None:
    assert hierarchy.parents_as_ids("leaf", PARENTS) == {"mid": {"top": None}}
    assert hierarchy.parents_as_ids("top", PARENTS) is None
    assert hierarchy.subtree_as_ids("top", PARENTS) == {"mid": {"leaf": None}, "side": None}
    assert hierarchy.subtree_as_ids("leaf", PARENTS) is None
