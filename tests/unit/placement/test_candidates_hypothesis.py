"""find_candidates (one SQL query) against a brute-force reference of Placement's semantics,
on random fleets of single-provider trees and random requests, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

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

CLASSES = ["VCPU", "MEMORY_MB", "DISK_GB", "CUSTOM_GPU"]
TRAITS = ["HW_CPU_X86_AVX2", "CUSTOM_FAST", "CUSTOM_SSD"]
AGGREGATES = [str(uuid.UUID(int=n)) for n in (1, 2, 3)]
RATIOS = [1.0, 0.7, 1.1, 1.5, 16.0]


@dataclass
class Inv:
    total: int
    reserved: int
    min_unit: int
    max_unit: int
    step_size: int
    ratio: float
    used: int


@dataclass
class Provider:
    uuid: str
    inventories: dict[str, Inv]
    traits: set[str] = field(default_factory=set)
    aggregates: set[str] = field(default_factory=set)


@st.composite
def inventories(draw: st.DrawFn) -> Inv:
    total = draw(st.integers(1, 12))
    max_unit = draw(st.integers(1, total + 2))
    return Inv(
        total=total,
        reserved=draw(st.integers(0, total)),
        min_unit=draw(st.integers(1, 3)),
        max_unit=max_unit,
        step_size=draw(st.integers(1, 3)),
        ratio=draw(st.sampled_from(RATIOS)),
        used=draw(st.integers(0, 14)),  # may exceed capacity: inventories can shrink under usage
    )


@st.composite
def providers(draw: st.DrawFn) -> Provider:
    classes = draw(st.lists(st.sampled_from(CLASSES), unique=True, max_size=4))
    return Provider(
        uuid=str(uuid.UUID(int=draw(st.integers(10, 2**64)))),
        inventories={rc: draw(inventories()) for rc in classes},
        traits=set(draw(st.lists(st.sampled_from(TRAITS), unique=True))),
        aggregates=set(draw(st.lists(st.sampled_from(AGGREGATES), unique=True))),
    )


@st.composite
def groups(draw: st.DrawFn, suffix: str, fleet: list[Provider]) -> RequestGroup:
    classes = draw(st.lists(st.sampled_from(CLASSES), unique=True, min_size=1, max_size=3))
    traits = draw(st.lists(st.sampled_from(TRAITS), unique=True, max_size=3))
    split = draw(st.integers(0, len(traits)))
    aggs = st.frozensets(st.sampled_from(AGGREGATES), min_size=1, max_size=2)
    trees = [p.uuid for p in fleet] + [str(uuid.UUID(int=5))]
    return RequestGroup(
        suffix=suffix,
        resources={rc: draw(st.integers(1, 6)) for rc in classes},
        required=tuple(frozenset([t]) for t in traits[:split]),
        forbidden=frozenset(traits[split:]),
        member_of=tuple(draw(st.lists(aggs, max_size=2))),
        forbidden_aggregates=frozenset(draw(st.lists(st.sampled_from(AGGREGATES), unique=True, max_size=1))),
        in_tree=draw(st.none() | st.sampled_from(trees)),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Provider], CandidateRequest]:
    fleet = draw(st.lists(providers(), min_size=1, max_size=10, unique_by=lambda p: p.uuid))
    suffixes = [""] if draw(st.booleans()) else []
    suffixes += draw(st.lists(st.sampled_from(["1", "2", "_NET"]), unique=True, max_size=2))
    if not suffixes:
        suffixes = [""]
    root_traits = draw(st.lists(st.sampled_from(TRAITS), unique=True, max_size=2))
    split = draw(st.integers(0, len(root_traits)))
    request = CandidateRequest(
        groups=tuple(draw(groups(s, fleet)) for s in suffixes),
        limit=draw(st.none() | st.integers(1, 6)),
        group_policy=draw(st.sampled_from(["none", "isolate"])),
        root_required=frozenset(root_traits[:split]),
        root_forbidden=frozenset(root_traits[split:]),
    )
    return fleet, request


# ---------------------------------------------------------------------------- the reference


def _group_fits(p: Provider, g: RequestGroup) -> bool:
    """Placement's per-group query (get_provider_ids_matching) for one provider."""
    if any(not (any_of & p.traits) for any_of in g.required) or g.forbidden & p.traits:
        return False
    if any(not (any_of & p.aggregates) for any_of in g.member_of) or g.forbidden_aggregates & p.aggregates:
        return False
    if g.in_tree is not None and g.in_tree != p.uuid:  # every tree is a single provider
        return False
    for rc, amount in g.resources.items():
        inv = p.inventories.get(rc)
        if inv is None:
            return False
        if not (inv.used + amount <= (inv.total - inv.reserved) * inv.ratio):
            return False
        if not (inv.min_unit <= amount <= inv.max_unit and amount % inv.step_size == 0):
            return False
    return True


def reference(fleet: list[Provider], request: CandidateRequest) -> list[tuple[str, dict[str, int]]]:
    """Placement's merge of per-group results (_merge_candidates, _exceeds_capacity with the
    integer capacity of provider summaries, group_policy, root traits, limit)."""
    result = []
    granular = [g for g in request.groups if g.suffix]
    for p in fleet:
        if not all(_group_fits(p, g) for g in request.groups):
            continue
        if request.group_policy == "isolate" and len(granular) > 1:
            continue  # all granular groups would land on the one provider of the tree
        if not request.root_required <= p.traits or request.root_forbidden & p.traits:
            continue
        totals: dict[str, int] = {}
        for g in request.groups:
            for rc, amount in g.resources.items():
                totals[rc] = totals.get(rc, 0) + amount
        exceeds = False
        for rc, amount in totals.items():
            inv = p.inventories[rc]
            capacity = int((inv.total - inv.reserved) * inv.ratio)
            exceeds |= inv.used + amount > capacity or amount > inv.max_unit
        if not exceeds:
            result.append((p.uuid, totals))
    return result[: request.limit] if request.limit else result


# ---------------------------------------------------------------------------- the test


def _load(db: Database, fleet: list[Provider]) -> None:
    with db.transaction() as session:
        for table in (
            Allocation,
            Inventory,
            ProviderTrait,
            ProviderAggregate,
            ProviderParent,
            ResourceProvider,
        ):
            session.execute(delete(table))
        for n, p in enumerate(fleet):
            session.execute(
                insert(ResourceProvider).values(id=n + 1, uuid=p.uuid, name=f"rp{n}", generation=n)
            )
            for rc, inv in p.inventories.items():
                session.execute(
                    insert(Inventory).values(
                        provider_id=n + 1,
                        resource_class=rc,
                        total=inv.total,
                        reserved=inv.reserved,
                        min_unit=inv.min_unit,
                        max_unit=inv.max_unit,
                        step_size=inv.step_size,
                        allocation_ratio=inv.ratio,
                    )
                )
                # Usage in two rows, as two consumers would leave it.
                for part in [n for n in (inv.used // 2, inv.used - inv.used // 2) if n]:
                    session.execute(
                        insert(Allocation).values(
                            provider_id=n + 1, consumer_id=str(uuid.uuid4()), resource_class=rc, used=part
                        )
                    )
            for trait in p.traits:
                session.execute(insert(ProviderTrait).values(provider_id=n + 1, trait=trait))
            for agg in p.aggregates:
                session.execute(insert(ProviderAggregate).values(provider_id=n + 1, aggregate_uuid=agg))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_candidates_match_placement_reference(
    db: Database, scenario: tuple[list[Provider], CandidateRequest]
) -> None:
    fleet, request = scenario
    _load(db, fleet)
    with db.read() as session:
        found = find_candidates(session, request)
    assert [(c.uuid, c.allocations) for c in found] == reference(fleet, request)
    by_uuid = {p.uuid: p for p in fleet}
    for c in found:
        p = by_uuid[c.uuid]
        assert c.traits == sorted(p.traits)
        assert c.root_uuid == c.uuid and c.parent_uuid is None
        assert c.mappings == {g.suffix: [c.uuid] for g in request.groups}
        assert {rc: (r["capacity"], r["used"]) for rc, r in c.resources.items()} == {
            rc: (int((inv.total - inv.reserved) * inv.ratio), inv.used) for rc, inv in p.inventories.items()
        }


# Microversions where the candidates body changes shape: 1.12 (allocations keyed by provider),
# 1.17 (traits), 1.27 (every inventory in the summaries), 1.29 (tree), 1.34 (mappings).
SHAPES = [10, 11, 12, 16, 17, 26, 27, 28, 29, 33, 34, 35]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios(), minor=st.sampled_from(SHAPES))
def test_database_built_body_is_the_view_of_find_candidates(
    db: Database, scenario: tuple[list[Provider], CandidateRequest], minor: int
) -> None:
    """On PostgreSQL the route answers with the body the database builds (candidates_body):
    the same JSON, at every microversion's shape, as the view of find_candidates, which the
    test above checks against the reference."""
    fleet, request = scenario
    _load(db, fleet)
    version = Version(1, minor)
    with db.read() as session:
        body = candidates_body(session, request, views.candidates_shape(version))
        found = find_candidates(session, request, all_resources=version.at_least(27))
    if db.is_sqlite:
        assert body is None  # the route builds it from find_candidates there
        return
    assert body is not None
    assert orjson.loads(body) == views.candidates(found, version)


def test_reference_is_not_trivial(db: Database) -> None:
    """A hand-made case both must agree on, with some providers in and some out."""
    fleet = [
        Provider(
            "00000000-0000-0000-0000-00000000000a", {"VCPU": Inv(4, 0, 1, 4, 1, 1.0, 2)}, {"CUSTOM_FAST"}
        ),
        Provider(
            "00000000-0000-0000-0000-00000000000b", {"VCPU": Inv(4, 0, 1, 4, 1, 1.0, 3)}, {"CUSTOM_FAST"}
        ),
        Provider("00000000-0000-0000-0000-00000000000c", {"VCPU": Inv(4, 0, 1, 4, 1, 1.0, 0)}, set()),
    ]
    request = CandidateRequest(
        groups=(RequestGroup(resources={"VCPU": 2}, required=(frozenset({"CUSTOM_FAST"}),)),)
    )
    _load(db, fleet)
    with db.read() as session:
        found = [c.uuid for c in find_candidates(session, request)]
    assert found == [u for u, _ in reference(fleet, request)] == ["00000000-0000-0000-0000-00000000000a"]
