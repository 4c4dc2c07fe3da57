"""Allocation candidates on provider trees: a child is offered on its own, with its root's
aggregates (member_of), its root's traits (root_required / root_forbidden) and its tree
(in_tree), and its summary names its root and parent. On SQLite and PostgreSQL."""

from __future__ import annotations

import orjson
from sqlalchemy import insert

import kumo.placement.api_models  # noqa: F401  (create_all needs the Placement API tables)
from kumo.db import Database
from kumo.placement.api import views
from kumo.placement.api.microversion import Version
from kumo.placement.api_models import ProviderAggregate, ProviderParent, ProviderTrait
from kumo.placement.candidates import (
    CandidateRequest,
    RequestGroup,
    candidates_body,
    find_candidates,
)
from kumo.placement.models import Allocation, Inventory, ResourceProvider

ROOT, CHILD, GRANDCHILD, LONE = (f"00000000-0000-0000-0000-00000000000{n}" for n in (1, 2, 3, 4))
AGG = "00000000-0000-0000-0000-0000000000a1"


def _fleet(db: Database) -> None:
    """ROOT (in AGG, trait CUSTOM_ROOT) > CHILD (VGPU 4, 1 used) > GRANDCHILD (VGPU 2);
    LONE, a root of its own with VGPU 8 and trait CUSTOM_ROOT, in no aggregate."""
    with db.transaction() as session:
        for n, uuid in enumerate((ROOT, CHILD, GRANDCHILD, LONE), start=1):
            session.execute(insert(ResourceProvider).values(id=n, uuid=uuid, name=f"rp{n}", generation=n))
        session.execute(insert(ProviderParent).values(provider_id=2, parent_id=1, root_id=1))
        session.execute(insert(ProviderParent).values(provider_id=3, parent_id=2, root_id=1))
        for pid, total in ((2, 4), (3, 2), (4, 8)):
            session.execute(
                insert(Inventory).values(
                    provider_id=pid,
                    resource_class="CUSTOM_VGPU",
                    total=total,
                    reserved=0,
                    min_unit=1,
                    max_unit=total,
                    step_size=1,
                    allocation_ratio=1.0,
                )
            )
        session.execute(
            insert(Allocation).values(provider_id=2, consumer_id="c1", resource_class="CUSTOM_VGPU", used=1)
        )
        session.execute(insert(ProviderAggregate).values(provider_id=1, aggregate_uuid=AGG))
        session.execute(insert(ProviderTrait).values(provider_id=1, trait="CUSTOM_ROOT"))
        session.execute(insert(ProviderTrait).values(provider_id=4, trait="CUSTOM_ROOT"))
        session.execute(insert(ProviderTrait).values(provider_id=3, trait="CUSTOM_LEAF"))


def _uuids(db: Database, **kwargs: object) -> list[str]:
    root_required = kwargs.pop("root_required", frozenset())
    root_forbidden = kwargs.pop("root_forbidden", frozenset())
    request = CandidateRequest(
        groups=(RequestGroup(resources={"CUSTOM_VGPU": 1}, **kwargs),),  # type: ignore[arg-type]
        root_required=root_required,  # type: ignore[arg-type]
        root_forbidden=root_forbidden,  # type: ignore[arg-type]
    )
    with db.read() as session:
        return [c.uuid for c in find_candidates(session, request)]


def test_children_carry_their_root_and_parent(db: Database) -> None:
    _fleet(db)
    request = CandidateRequest(groups=(RequestGroup(resources={"CUSTOM_VGPU": 2}),))
    with db.read() as session:
        found = {c.uuid: c for c in find_candidates(session, request)}
    assert list(found) == [CHILD, GRANDCHILD, LONE]
    assert (found[CHILD].root_uuid, found[CHILD].parent_uuid) == (ROOT, ROOT)
    assert (found[GRANDCHILD].root_uuid, found[GRANDCHILD].parent_uuid) == (ROOT, CHILD)
    assert (found[LONE].root_uuid, found[LONE].parent_uuid) == (LONE, None)
    assert found[CHILD].resources == {"CUSTOM_VGPU": {"capacity": 4, "used": 1}}
    assert found[GRANDCHILD].traits == ["CUSTOM_LEAF"] and found[CHILD].traits == []
    with db.read() as session:
        body = candidates_body(session, request, views.candidates_shape(Version(1, 35)))
    if body is not None:  # PostgreSQL builds the body itself: roots and parents too
        summaries = orjson.loads(body)["provider_summaries"]
        assert (
            summaries[GRANDCHILD]["root_provider_uuid"],
            summaries[GRANDCHILD]["parent_provider_uuid"],
        ) == (
            ROOT,
            CHILD,
        )
        assert summaries == views.candidates(list(found.values()), Version(1, 35))["provider_summaries"]


def test_member_of_counts_the_roots_aggregates(db: Database) -> None:
    _fleet(db)
    assert _uuids(db, member_of=(frozenset({AGG}),)) == [CHILD, GRANDCHILD]
    assert _uuids(db, forbidden_aggregates=frozenset({AGG})) == [LONE]


def test_in_tree_takes_any_provider_of_the_tree(db: Database) -> None:
    _fleet(db)
    for member in (ROOT, CHILD, GRANDCHILD):
        assert _uuids(db, in_tree=member) == [CHILD, GRANDCHILD]
    assert _uuids(db, in_tree=LONE) == [LONE]
    assert _uuids(db, in_tree="00000000-0000-0000-0000-0000000000ff") == []


def test_root_traits_are_the_roots(db: Database) -> None:
    _fleet(db)
    assert _uuids(db, root_required=frozenset({"CUSTOM_ROOT"})) == [CHILD, GRANDCHILD, LONE]
    assert _uuids(db, root_required=frozenset({"CUSTOM_LEAF"})) == []  # the grandchild is no root
    assert _uuids(db, root_forbidden=frozenset({"CUSTOM_ROOT"})) == []
    assert _uuids(db, root_forbidden=frozenset({"CUSTOM_LEAF"})) == [CHILD, GRANDCHILD, LONE]


def test_own_traits_are_the_providers(db: Database) -> None:
    _fleet(db)
    assert _uuids(db, required=(frozenset({"CUSTOM_LEAF"}),)) == [GRANDCHILD]
    assert _uuids(db, forbidden=frozenset({"CUSTOM_LEAF"})) == [CHILD, LONE]
