"""Rendezvous ownership: every node has exactly one owner, a dead conductor's nodes move and
nothing else does, a new conductor takes about its share."""

from __future__ import annotations

import uuid

from kumo.baremetal import ownership

NODES = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(3000)]


def owners(conductors: list[str]) -> dict[str, str | None]:
    return {n: ownership.owner(n, conductors) for n in NODES}


def test_no_conductor_owns_nothing() -> None:
    assert ownership.owner(NODES[0], []) is None
    assert ownership.owned_by("c1", [], ["c1"]) == []


def test_each_node_has_one_owner_and_the_split_is_fair() -> None:
    live = ["c1", "c2", "c3"]
    parts = {c: set(ownership.owned_by(c, NODES, live)) for c in live}
    assert set().union(*parts.values()) == set(NODES)
    assert sum(len(p) for p in parts.values()) == len(NODES)
    for part in parts.values():
        assert 800 <= len(part) <= 1200  # a third each, give or take


def test_owner_is_independent_of_order() -> None:
    assert owners(["c1", "c2", "c3"]) == owners(["c3", "c1", "c2"])


def test_a_dead_conductor_only_moves_its_own_nodes() -> None:
    before = owners(["c1", "c2", "c3"])
    after = owners(["c1", "c3"])
    for node, was in before.items():
        if was == "c2":
            assert after[node] in ("c1", "c3")
        else:
            assert after[node] == was


def test_a_new_conductor_takes_its_share_from_everyone_and_moves_nothing_else() -> None:
    before = owners(["c1", "c2"])
    after = owners(["c1", "c2", "c3"])
    moved = [n for n in NODES if before[n] != after[n]]
    assert all(after[n] == "c3" for n in moved)
    assert 800 <= len(moved) <= 1200


def test_owned_by_counts_the_caller_as_live() -> None:
    mine = ownership.owned_by("new", NODES, ["c1"])
    assert mine == [n for n in NODES if ownership.owner(n, ["c1", "new"]) == "new"]
