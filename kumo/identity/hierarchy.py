"""Project trees as values (pure): a project's ancestors and subtree, read from a map of each
project's parent (None: a top-level project, whose parent is its domain)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Keystone's default `[DEFAULT] max_project_tree_depth`: a top-level project is at depth 1.
MAX_DEPTH = 5

Parents = Mapping[str, str | None]


def ancestors(project_id: str, parents: Parents) -> list[str]:
    """The project's parent, its parent's parent, … up to the top-level project."""
    out: list[str] = []
    current = parents.get(project_id)
    while current is not None and current not in out:
        out.append(current)
        current = parents.get(current)
    return out


def children_of(parents: Parents) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for child, parent in sorted(parents.items()):
        if parent is not None:
            out.setdefault(parent, []).append(child)
    return out


def subtree(project_id: str, parents: Parents) -> list[str]:
    """Every project below this one (breadth first), itself excluded."""
    children = children_of(parents)
    out: list[str] = []
    todo = list(children.get(project_id, []))
    while todo:
        current = todo.pop(0)
        if current not in out:
            out.append(current)
            todo.extend(children.get(current, []))
    return out


def depth(project_id: str, parents: Parents) -> int:
    return 1 + len(ancestors(project_id, parents))


def parents_as_ids(project_id: str, parents: Parents) -> dict[str, Any] | None:
    """Keystone's `parents_as_ids`: {parent: {grandparent: … {top: None}}}; None at the top."""
    nested: dict[str, Any] | None = None
    for ancestor in reversed(ancestors(project_id, parents)):
        nested = {ancestor: nested}
    return nested


def subtree_as_ids(project_id: str, parents: Parents) -> dict[str, Any] | None:
    """Keystone's `subtree_as_ids`: {child: {grandchild: None, …}, …}; None for a leaf."""
    children = children_of(parents)

    def below(node: str) -> dict[str, Any] | None:
        kids = children.get(node, [])
        return {kid: below(kid) for kid in kids} if kids else None

    return below(project_id)
