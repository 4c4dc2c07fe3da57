"""Allocation candidates (Placement's GET /allocation_candidates) in one SQL query.

Every candidate is one provider that satisfies every request group on its own: Placement's
semantics for single-provider trees. (Nested trees and sharing providers are not combined: a
provider in a tree is offered on its own, with its tree's root for in_tree, root_required and
aggregates.) For such fleets Placement's rules come down to, per provider:

* for each requested resource class, with `total` the sum over the groups asking for it:
  an inventory with used + total <= (total_inv - reserved) * allocation_ratio,
  total <= max_unit, and every group's amount >= min_unit and a multiple of step_size;
* every group's required traits (each an any-of set), none of its forbidden traits;
* every group's member_of (each an any-of set of aggregates) on the provider or its root,
  none of its forbidden aggregates;
* every group's in_tree: the provider's root is the root of that provider;
* root_required / root_forbidden traits on its root;
* group_policy=isolate with two or more suffixed groups can never be met by one provider.

The query walks providers in id order and stops at `limit`, so a page of 1,000 out of 10,000
providers reads about 1,000 providers' inventories and usages, by index.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select, text
from sqlalchemy.orm import Session

from kumo.placement.api_models import ProviderAggregate, ProviderParent, ProviderTrait
from kumo.placement.models import Allocation, Inventory, ResourceProvider

_RP = ResourceProvider.__table__
_INV = Inventory.__table__
_ALLOC = Allocation.__table__
_TRAITS = ProviderTrait.__table__
_AGGS = ProviderAggregate.__table__
_PARENTS = ProviderParent.__table__


@dataclass(frozen=True)
class RequestGroup:
    """One request group: '' is the unsuffixed group, anything else a granular one."""

    suffix: str = ""
    resources: Mapping[str, int] = field(default_factory=dict)
    required: tuple[frozenset[str], ...] = ()  # all of these sets, any trait of each
    forbidden: frozenset[str] = frozenset()
    member_of: tuple[frozenset[str], ...] = ()  # all of these sets, any aggregate of each
    forbidden_aggregates: frozenset[str] = frozenset()
    in_tree: str | None = None


@dataclass(frozen=True)
class CandidateRequest:
    groups: tuple[RequestGroup, ...]
    limit: int | None = None
    group_policy: str | None = None
    root_required: frozenset[str] = frozenset()
    root_forbidden: frozenset[str] = frozenset()

    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for group in self.groups:
            for rc, amount in group.resources.items():
                totals[rc] += amount
        return dict(totals)


@dataclass(frozen=True)
class ResourceSummary:
    capacity: int
    used: int


@dataclass
class Candidate:
    provider_id: int
    uuid: str
    generation: int
    root_uuid: str
    parent_uuid: str | None
    allocations: dict[str, int]  # resource class -> amount to claim on this provider
    mappings: dict[str, list[str]]  # group suffix -> [provider uuid]
    resources: dict[str, ResourceSummary] = field(default_factory=dict)  # every inventory
    traits: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- SQL building blocks


def usage_of(provider_id: ColumnElement[int], resource_class: ColumnElement[str] | str) -> ColumnElement[int]:
    """Sum of allocations of one class on one provider (0 when none), as a correlated subquery."""
    return (
        select(func.coalesce(func.sum(_ALLOC.c.used), 0))
        .where(_ALLOC.c.provider_id == provider_id, _ALLOC.c.resource_class == resource_class)
        .correlate_except(_ALLOC)
        .scalar_subquery()
    )


def fits(
    provider_id: ColumnElement[int], wanted: Mapping[str, tuple[int, Iterable[int]]]
) -> ColumnElement[bool]:
    """The capacity rule, for every class of `wanted` (class -> (total, the groups' amounts)):
    the provider has an inventory of it with room for `total` more, total <= max_unit, each
    amount >= min_unit and a multiple of step_size.

    One correlated count over the provider's inventory rows (by primary key), each row
    summing its usage by index: a subplan PostgreSQL cannot turn into a join, so it walks
    providers in id order and stops at LIMIT."""
    inv = _INV.alias()
    capacity = (inv.c.total - inv.c.reserved) * inv.c.allocation_ratio
    per_class = []
    for rc, (total, amounts) in sorted(wanted.items()):
        conditions = [inv.c.resource_class == rc, inv.c.max_unit >= total]
        for amount in sorted(set(amounts) or {total}):
            conditions += [inv.c.min_unit <= amount, literal(amount) % inv.c.step_size == 0]
        per_class.append(and_(*conditions, usage_of(inv.c.provider_id, rc) + total <= capacity))
    matching = (
        select(func.count())
        .select_from(inv)
        .where(inv.c.provider_id == provider_id, or_(*per_class))
        .correlate_except(inv)
        .scalar_subquery()
    )
    return matching == len(per_class)


def _any(query: Select[Any]) -> ColumnElement[bool]:
    """EXISTS as a scalar subplan (`(SELECT 1 ... LIMIT 1) IS NOT NULL`): PostgreSQL keeps it a
    per-row filter instead of pulling it up into a semi-join that loses the id order."""
    return query.limit(1).scalar_subquery().is_not(None)


def has_any_trait(provider_id: ColumnElement[int], traits: Iterable[str]) -> ColumnElement[bool]:
    t = _TRAITS.alias()
    return _any(
        select(literal(1))
        .where(t.c.provider_id == provider_id, t.c.trait.in_(sorted(traits)))
        .correlate_except(t)
    )


def in_any_aggregate(
    provider_ids: list[ColumnElement[int]], aggregates: Iterable[str]
) -> ColumnElement[bool]:
    a = _AGGS.alias()
    owner = (
        a.c.provider_id == provider_ids[0] if len(provider_ids) == 1 else a.c.provider_id.in_(provider_ids)
    )
    return _any(
        select(literal(1)).where(owner, a.c.aggregate_uuid.in_(sorted(aggregates))).correlate_except(a)
    )


def root_of_uuid(uuid: str) -> ColumnElement[int]:
    """Internal id of the root of the provider with this uuid (NULL when there is none)."""
    rp, pp = _RP.alias(), _PARENTS.alias()
    return (
        select(func.coalesce(pp.c.root_id, rp.c.id))
        .select_from(rp.outerjoin(pp, pp.c.provider_id == rp.c.id))
        .where(rp.c.uuid == uuid)
        .scalar_subquery()
    )


# ---------------------------------------------------------------------------- the query


def _matching(
    request: CandidateRequest, id_above: int | None = None, id_at_most: int | None = None
) -> Select[Any] | None:
    """The providers that satisfy `request`, in id order, at most `request.limit` (None when
    nothing can): columns id, uuid, generation, root_id, parent_id. `id_above` and
    `id_at_most` bound the walk."""
    suffixed = [g for g in request.groups if g.suffix]
    if request.group_policy == "isolate" and len(suffixed) > 1:
        return None
    totals = request.totals()
    if not totals:
        return None

    rp, pp = _RP.alias("rp"), _PARENTS.alias("pp")
    # Tree columns as correlated lookups, not a join: every filter then sits on the scan of
    # providers, where PostgreSQL runs the cheap ones (aggregates, traits) before `fits`.
    root_id = func.coalesce(
        select(pp.c.root_id).where(pp.c.provider_id == rp.c.id).scalar_subquery(), rp.c.id
    )
    parent_id = select(pp.c.parent_id).where(pp.c.provider_id == rp.c.id).scalar_subquery()
    where: list[ColumnElement[bool]] = []
    wanted = {
        rc: (total, [g.resources[rc] for g in request.groups if rc in g.resources])
        for rc, total in totals.items()
    }
    where.append(fits(rp.c.id, wanted))
    for group in request.groups:
        where += [has_any_trait(rp.c.id, any_of) for any_of in group.required]
        if group.forbidden:
            where.append(~has_any_trait(rp.c.id, group.forbidden))
        where += [in_any_aggregate([rp.c.id, root_id], any_of) for any_of in group.member_of]
        if group.forbidden_aggregates:
            where.append(~in_any_aggregate([rp.c.id, root_id], group.forbidden_aggregates))
        if group.in_tree:
            where.append(root_id == root_of_uuid(group.in_tree))
    where += [has_any_trait(root_id, [trait]) for trait in sorted(request.root_required)]
    if request.root_forbidden:
        where.append(~has_any_trait(root_id, request.root_forbidden))

    if id_above is not None:
        where.append(rp.c.id > id_above)
    if id_at_most is not None:
        where.append(rp.c.id <= id_at_most)
    matching = (
        select(rp.c.id, rp.c.uuid, rp.c.generation, root_id.label("root_id"), parent_id.label("parent_id"))
        .where(*where)
        .order_by(rp.c.id)
    )
    if request.limit:
        matching = matching.limit(request.limit)
    return matching


def _no_jit(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # The planner prices the correlated subplans high enough to JIT-compile the query,
        # which costs more than running it (50-500 ms at 1,000-10,000 providers).
        session.execute(text("SET LOCAL jit = off"))


def provider_id_range(session: Session, request: CandidateRequest) -> tuple[int, int] | None:
    """The lowest and highest id a candidate for `request` can have: every candidate has an
    inventory of each requested class (None when no provider has them all in one range).
    One pass over the inventories: it keeps a walk off a fleet of other kinds (baremetal
    nodes, when VMs are asked for)."""
    totals = request.totals()
    if not totals:
        return None
    rows = session.execute(
        select(func.min(_INV.c.provider_id), func.max(_INV.c.provider_id))
        .where(_INV.c.resource_class.in_(sorted(totals)))
        .group_by(_INV.c.resource_class)
    ).all()
    if len(rows) < len(totals):
        return None
    low, high = max(r[0] for r in rows), min(r[1] for r in rows)
    return (low, high) if low <= high else None


def candidate_provider_ids(
    session: Session,
    request: CandidateRequest,
    *,
    start_after: int = 0,
    id_range: tuple[int, int] | None = None,
) -> list[int]:
    """The ids of the providers GET /allocation_candidates would offer for `request` (the same
    query), at most `request.limit`, walking ids from `start_after` and wrapping around: the
    scheduler's resource prefilter. A random start spreads concurrent schedulers over
    different pages of a large fleet. `id_range` (provider_id_range) bounds both legs."""
    low, high = id_range if id_range is not None else (None, None)
    first = _matching(request, max(start_after, (low or 1) - 1) or None, high)
    if first is None:
        return []
    _no_jit(session)
    ids = list(session.scalars(select(first.subquery().c.id)))
    if start_after > 0 and (not request.limit or len(ids) < request.limit):
        rest = _matching(request, (low - 1) if low else None, start_after)
        assert rest is not None
        if request.limit:
            rest = rest.limit(request.limit - len(ids))
        ids += session.scalars(select(rest.subquery().c.id))
    return ids


def find_candidates(
    session: Session, request: CandidateRequest, *, all_resources: bool = True
) -> list[Candidate]:
    """Candidates in provider id order, at most `request.limit`. `all_resources=False` keeps
    only the requested classes in each candidate's resources (Placement before 1.27)."""
    matching = _matching(request)
    if matching is None:
        return []
    totals = request.totals()
    _no_jit(session)
    root, parent, t = _RP.alias("root"), _RP.alias("parent"), _TRAITS.alias("t")
    cand = matching.subquery("candidates")
    found = session.execute(
        select(
            cand.c.id,
            cand.c.uuid,
            cand.c.generation,
            select(root.c.uuid).where(root.c.id == cand.c.root_id).scalar_subquery(),
            select(parent.c.uuid).where(parent.c.id == cand.c.parent_id).scalar_subquery(),
            select(func.aggregate_strings(t.c.trait, ","))
            .where(t.c.provider_id == cand.c.id)
            .scalar_subquery(),
        ).order_by(cand.c.id)
    ).all()
    suffixes = [g.suffix for g in request.groups]
    candidates = {
        pid: Candidate(
            provider_id=pid,
            uuid=uuid,
            generation=generation,
            root_uuid=root_uuid,
            parent_uuid=parent_uuid,
            allocations=dict(totals),
            mappings={suffix: [uuid] for suffix in suffixes},
            traits=sorted(trait_csv.split(",")) if trait_csv else [],
        )
        for pid, uuid, generation, root_uuid, parent_uuid, trait_csv in found
    }

    # Then their inventories and usages, by id: a second statement, so the planner sizes it
    # by the real number of candidates (its guess for the filter above is a handful of rows,
    # which made it join by full scans).
    inv = _INV.alias("inv")
    ids = list(candidates)
    for chunk in (ids[i : i + 5000] for i in range(0, len(ids), 5000)):
        query = select(
            inv.c.provider_id,
            inv.c.resource_class,
            inv.c.total,
            inv.c.reserved,
            inv.c.allocation_ratio,
            usage_of(inv.c.provider_id, inv.c.resource_class),
        ).where(inv.c.provider_id.in_(chunk))
        if not all_resources:
            query = query.where(inv.c.resource_class.in_(sorted(totals)))
        for pid, rc, total, reserved, ratio, used in session.execute(query.order_by(inv.c.resource_class)):
            candidates[pid].resources[rc] = ResourceSummary(int((total - reserved) * ratio), int(used or 0))
    return list(candidates.values())


def provider_matches(
    provider_id: ColumnElement[int],
    *,
    resources: Mapping[str, int] | None = None,
    required: Iterable[frozenset[str]] = (),
    forbidden: Iterable[str] = (),
    member_of: Iterable[frozenset[str]] = (),
    forbidden_aggregates: Iterable[str] = (),
) -> list[ColumnElement[bool]]:
    """Filters of GET /resource_providers (on the provider itself), for reuse in its query."""
    where = [fits(provider_id, {rc: (n, [n]) for rc, n in resources.items()})] if resources else []
    where += [has_any_trait(provider_id, any_of) for any_of in required]
    forbidden = list(forbidden)
    if forbidden:
        where.append(~has_any_trait(provider_id, forbidden))
    where += [in_any_aggregate([provider_id], any_of) for any_of in member_of]
    forbidden_aggregates = list(forbidden_aggregates)
    if forbidden_aggregates:
        where.append(~in_any_aggregate([provider_id], forbidden_aggregates))
    return where
