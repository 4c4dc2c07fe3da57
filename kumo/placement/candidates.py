"""Allocation candidates (Placement's GET /allocation_candidates) in one SQL query.

Every candidate is one provider that satisfies every request group on its own: Placement's
semantics for single-provider trees. (Nested trees and sharing providers are not combined: a
provider in a tree is offered on its own, with its tree's root for in_tree, root_required and
aggregates.) For such fleets Placement's rules come down to, per provider:

* for each requested resource class, with `total` the sum over the groups asking for it:
  an inventory that takes `total` more, each group's amount a unit of it (the capacity
  rule, kumo.placement.capacity);
* every group's required traits (each an any-of set), none of its forbidden traits;
* every group's member_of (each an any-of set of aggregates) on the provider or its root,
  none of its forbidden aggregates;
* every group's in_tree: the provider's root is the root of that provider;
* root_required / root_forbidden traits on its root;
* group_policy=isolate with two or more suffixed groups can never be met by one provider.

The query walks providers in id order and stops at `limit`, so a page of 1,000 out of 10,000
providers reads about 1,000 providers' inventories and usages, by index. Trait and aggregate
filters are uncorrelated IN subqueries the database computes once per query and probes per
provider. On PostgreSQL one statement also returns each candidate's inventories and usages
(a LATERAL subquery per provider decides capacity and makes the summary from the same rows);
SQLite, which has no LATERAL, reads them in a second statement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import orjson
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from kumo.placement import capacity as capacity_sql
from kumo.placement.api_models import ProviderAggregate, ProviderParent, ProviderTrait
from kumo.placement.models import Allocation, Inventory, ResourceProvider
from kumo.placement.store_protocol import PlacementStore, store_of
from kumo.scheduler import capacity as capacity_rule

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


class ResourceSummary(TypedDict):
    """A provider summary's entry for one class, already in the shape of the response body."""

    capacity: int
    used: int


@dataclass(slots=True)
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
    per_class = [
        _class_fits(inv, rc, total, amounts, usage_of(inv.c.provider_id, rc))
        for rc, (total, amounts) in sorted(wanted.items())
    ]
    matching = (
        select(func.count())
        .select_from(inv)
        .where(inv.c.provider_id == provider_id, or_(*per_class))
        .correlate_except(inv)
        .scalar_subquery()
    )
    return matching == len(per_class)


def _member(provider_id: ColumnElement[int], holders: Select[Any]) -> ColumnElement[bool]:
    """`provider_id IN (holders)` with `holders` uncorrelated: the database computes the set once
    (PostgreSQL: a hashed subplan; SQLite: an ephemeral index) and probes it per provider,
    instead of running a subquery per provider. `IS TRUE` (a no-op: ids are never NULL) keeps
    PostgreSQL from pulling the IN up into a semi-join, which would lose the id-order walk
    that stops at LIMIT."""
    return provider_id.in_(holders).is_(True)


def _trait_holders(traits: Iterable[str]) -> Select[Any]:
    t = _TRAITS.alias()
    return select(t.c.provider_id).where(t.c.trait.in_(sorted(traits)))


def _aggregate_members(aggregates: Iterable[str]) -> Select[Any]:
    a = _AGGS.alias()
    return select(a.c.provider_id).where(a.c.aggregate_uuid.in_(sorted(aggregates)))


def _under(roots: Select[Any]) -> Select[Any]:
    """The non-root providers whose root is in `roots`."""
    pp = _PARENTS.alias()
    return select(pp.c.provider_id).where(pp.c.root_id.in_(roots))


def has_any_trait(provider_id: ColumnElement[int], traits: Iterable[str]) -> ColumnElement[bool]:
    return _member(provider_id, _trait_holders(traits))


def in_any_aggregate(
    provider_ids: list[ColumnElement[int]], aggregates: Iterable[str]
) -> ColumnElement[bool]:
    members = _aggregate_members(aggregates)
    return or_(*(_member(provider_id, members) for provider_id in provider_ids))


def _self_or_root_in_aggregate(
    provider_id: ColumnElement[int], aggregates: Iterable[str]
) -> ColumnElement[bool]:
    """The provider or the root of its tree is in one of `aggregates`."""
    members = _aggregate_members(aggregates)
    return or_(_member(provider_id, members), _member(provider_id, _under(members)))


def _root_has_any_trait(provider_id: ColumnElement[int], traits: Iterable[str]) -> ColumnElement[bool]:
    """The root of the provider's tree (the provider itself when it is a root) has a trait."""
    holders, pp = _trait_holders(traits), _PARENTS.alias()
    return or_(
        and_(_member(provider_id, holders), ~_member(provider_id, select(pp.c.provider_id))),
        _member(provider_id, _under(holders)),
    )


def _in_tree(provider_id: ColumnElement[int], uuid: str) -> ColumnElement[bool]:
    """The provider is in the tree of the provider with this uuid."""
    root, pp = root_of_uuid(uuid), _PARENTS.alias()
    return or_(
        provider_id == root, _member(provider_id, select(pp.c.provider_id).where(pp.c.root_id == root))
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


def _wanted(request: CandidateRequest) -> dict[str, tuple[int, list[int]]]:
    """Class -> (total over the groups, each group's amount)."""
    return {
        rc: (total, [g.resources[rc] for g in request.groups if rc in g.resources])
        for rc, total in request.totals().items()
    }


def _class_fits(inv: Any, rc: str, total: int, amounts: Iterable[int], used: ColumnElement[Any]) -> Any:
    """One inventory row of `inv` is of class `rc` and takes `total` more on top of `used`."""
    return and_(inv.c.resource_class == rc, capacity_sql.fits(inv, used, total, amounts))


def _placeable(request: CandidateRequest) -> bool:
    suffixed = [g for g in request.groups if g.suffix]
    if request.group_policy == "isolate" and len(suffixed) > 1:
        return False
    return bool(request.totals())


def _filters(
    request: CandidateRequest,
    provider_id: ColumnElement[int],
) -> list[ColumnElement[bool]]:
    """Every rule but capacity: traits, aggregates, trees, root traits."""
    where: list[ColumnElement[bool]] = []
    for group in request.groups:
        where += [has_any_trait(provider_id, any_of) for any_of in group.required]
        if group.forbidden:
            where.append(~has_any_trait(provider_id, group.forbidden))
        where += [_self_or_root_in_aggregate(provider_id, any_of) for any_of in group.member_of]
        if group.forbidden_aggregates:
            where.append(~_self_or_root_in_aggregate(provider_id, group.forbidden_aggregates))
        if group.in_tree:
            where.append(_in_tree(provider_id, group.in_tree))
    where += [_root_has_any_trait(provider_id, [trait]) for trait in sorted(request.root_required)]
    if request.root_forbidden:
        where.append(~_root_has_any_trait(provider_id, request.root_forbidden))
    return where


def _matching(request: CandidateRequest) -> Select[Any] | None:
    """The providers that satisfy `request`, in id order, at most `request.limit` (None when
    nothing can): columns id, uuid, generation. Portable SQL (SQLite and PostgreSQL)."""
    if not _placeable(request):
        return None
    rp = _RP.alias("rp")
    where = [*_filters(request, rp.c.id), fits(rp.c.id, _wanted(request))]
    matching = select(rp.c.id, rp.c.uuid, rp.c.generation).where(*where).order_by(rp.c.id)
    if request.limit:
        matching = matching.limit(request.limit)
    return matching


def _matching_with_inventories(
    request: CandidateRequest, json_resources: bool | None = None
) -> Select[Any] | None:
    """PostgreSQL: `_matching` plus every inventory of each provider and its usage, in one
    walk. A LATERAL subquery per provider reads its inventory rows (primary key) joined to
    its allocations summed by class (covering index), once: the same rows decide the
    capacity rule (a count of fitting classes) and make the provider summary (one string
    `CLASS:capacity:used,...`, cheaper to aggregate and to read than arrays; class names are
    [A-Z0-9_]). Cheap filters on the provider scan run before it, and the walk stops at LIMIT
    in id order.

    `json_resources` makes the summary the JSON object of the response body instead
    (`{"CLASS": {"capacity": c, "used": u}, ...}`): every inventory when True, only the
    requested classes when False (Placement before 1.27)."""
    if not _placeable(request):
        return None
    wanted = _wanted(request)
    rp, inv, a = _RP.alias("rp"), _INV.alias("inv"), _ALLOC.alias("a")
    usage = (
        select(a.c.resource_class, func.sum(a.c.used).label("used"))
        .where(a.c.provider_id == rp.c.id)
        .group_by(a.c.resource_class)
        .correlate(rp)
        .lateral("usage")
    )
    used = func.coalesce(usage.c.used, 0)
    fitting = or_(
        *(_class_fits(inv, rc, total, amounts, used) for rc, (total, amounts) in sorted(wanted.items()))
    )
    capacity = capacity_sql.capacity_held(inv)
    if json_resources is None:
        entry = inv.c.resource_class + ":" + cast(capacity, String) + ":" + cast(used, String)
        inventories: ColumnElement[Any] = func.string_agg(entry, literal_column("','"))
    else:
        entry = func.concat(
            literal_column("'\"'"),
            inv.c.resource_class,
            literal_column('\'":{"capacity":\''),
            capacity,
            literal_column("',\"used\":'"),
            used,
            literal_column("'}'"),
        )
        agg: ColumnElement[Any] = func.string_agg(entry, literal_column("','"))
        if not json_resources:
            agg = agg.filter(inv.c.resource_class.in_(sorted(wanted)))
        inventories = func.concat(literal_column("'{'"), agg, literal_column("'}'"))
    summary = (
        select(
            func.count().filter(fitting).label("fitting"),
            inventories.label("inventories"),
        )
        .select_from(inv.outerjoin(usage, usage.c.resource_class == inv.c.resource_class))
        .where(inv.c.provider_id == rp.c.id)
        .lateral("summary")
    )
    matching = (
        select(
            rp.c.id,
            rp.c.uuid,
            rp.c.generation,
            summary.c.inventories,
        )
        .select_from(rp.join(summary, true()))
        .where(summary.c.fitting == len(wanted), *_filters(request, rp.c.id))
        .order_by(rp.c.id)
    )
    if request.limit:
        matching = matching.limit(request.limit)
    return matching


def _no_jit(session: Session) -> None:
    # The planner may price the correlated subplans high enough to JIT-compile the query,
    # which costs more than running it.
    store_of(session).without_jit(session)


def _request_key(request: CandidateRequest) -> tuple[Any, ...]:
    """Everything a candidates statement is built from, hashable: the statement cache's key."""
    return (
        tuple(
            (
                g.suffix,
                tuple(sorted(g.resources.items())),
                tuple(tuple(sorted(s)) for s in g.required),
                tuple(sorted(g.forbidden)),
                tuple(tuple(sorted(s)) for s in g.member_of),
                tuple(sorted(g.forbidden_aggregates)),
                g.in_tree,
            )
            for g in request.groups
        ),
        request.limit,
        request.group_policy,
        tuple(sorted(request.root_required)),
        tuple(sorted(request.root_forbidden)),
    )


_STATEMENTS: dict[tuple[Any, ...], Select[Any] | None] = {}
_STATEMENTS_MAX = 512


def _tree_columns(cand: Any) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """(root uuid, parent uuid) of each candidate of the subquery `cand`."""
    root, parent = _RP.alias("root"), _RP.alias("parent")
    pp = _PARENTS.alias("pp")
    # Most fleets have no nested providers: one look at the (empty) parents table, computed
    # once per query, spares two lookups per candidate.
    trees = exists(select(_PARENTS.c.provider_id))
    root_uuid = case(
        (
            trees,
            func.coalesce(
                select(root.c.uuid)
                .join(pp, pp.c.root_id == root.c.id)
                .where(pp.c.provider_id == cand.c.id)
                .scalar_subquery(),
                cand.c.uuid,
            ),
        ),
        else_=cand.c.uuid,
    )
    parent_uuid = case(
        (
            trees,
            select(parent.c.uuid)
            .join(pp, pp.c.parent_id == parent.c.id)
            .where(pp.c.provider_id == cand.c.id)
            .scalar_subquery(),
        ),
        else_=null(),
    )
    return root_uuid, parent_uuid


def _candidates_statement(request: CandidateRequest, in_sql: bool) -> Select[Any] | None:
    """The statement of find_candidates, built once per distinct request (schedulers and
    clients repeat the same few request shapes). `in_sql`: the
    store assembles each candidate's inventories (PlacementStore.candidates_in_sql)."""
    key = (in_sql, _request_key(request))
    if key in _STATEMENTS:
        return _STATEMENTS[key]
    matching = _matching_with_inventories(request) if in_sql else _matching(request)
    statement = None
    if matching is not None:
        cand = matching.subquery("candidates")
        t = _TRAITS.alias("t")
        columns = [
            cand.c.id,
            cand.c.uuid,
            cand.c.generation,
            *_tree_columns(cand),
            select(func.aggregate_strings(t.c.trait, ","))
            .where(t.c.provider_id == cand.c.id)
            .scalar_subquery(),
        ]
        if in_sql:
            columns.append(cand.c.inventories)
        statement = select(*columns).order_by(cand.c.id)
    _remember(key, statement)
    return statement


def _remember(key: tuple[Any, ...], statement: Select[Any] | None) -> None:
    if len(_STATEMENTS) >= _STATEMENTS_MAX:
        _STATEMENTS.clear()
    _STATEMENTS[key] = statement


@dataclass(frozen=True)
class BodyShape:
    """What GET /allocation_candidates' body holds at a microversion (kumo.placement.api.views)."""

    all_resources: bool = True  # 1.27: every inventory in the summaries, not the requested only
    as_object: bool = True  # 1.12: allocations keyed by provider uuid
    with_mappings: bool = True  # 1.34
    with_traits: bool = True  # 1.17
    with_tree: bool = True  # 1.29: parent and root provider uuids in the summaries


def _text(value: str) -> ColumnElement[str]:
    """A constant piece of JSON, inlined in the statement (constant JSON from orjson or fixed
    text: no quote or percent characters)."""
    assert "'" not in value and "%" not in value
    return literal_column(f"'{value}'", String)


def _concat(*parts: str | ColumnElement[Any]) -> ColumnElement[str]:
    """One concat() call (a chain of || makes a new string per operator)."""
    return func.concat(*(_text(p) if isinstance(p, str) else p for p in parts))


def _body_statement(store: PlacementStore, request: CandidateRequest, shape: BodyShape) -> Select[Any] | None:
    """Where the store assembles candidates in SQL (`candidates_in_sql`): the whole response
    body of GET /allocation_candidates as one string, made
    by the database from the same walk as find_candidates (`_matching_with_inventories`):
    per candidate its allocation request and its provider summary as JSON text, joined in
    provider id order. Python then has nothing to do per candidate: building 1,000 candidates
    and their summaries as objects and encoding them cost as much CPU as the query itself.
    Class and trait names go into the JSON unescaped: both are [A-Z0-9_] (checked on the way
    in: params.resource_class, traits.CUSTOM_TRAIT, os-traits and os-resource-classes)."""
    matching = _matching_with_inventories(request, shape.all_resources)
    if matching is None:
        return None
    cand = matching.subquery("candidates")
    uuid = cand.c.uuid
    totals = orjson.dumps(request.totals()).decode()
    allocation: list[str | ColumnElement[Any]] = (
        ['{"allocations":{"', uuid, f'":{{"resources":{totals}}}}}']
        if shape.as_object
        else ['{"allocations":[{"resource_provider":{"uuid":"', uuid, f'"}},"resources":{totals}}}]']
    )
    if shape.with_mappings:
        allocation.append(',"mappings":{')
        for n, group in enumerate(request.groups):
            allocation += [("," if n else "") + orjson.dumps(group.suffix).decode() + ':["', uuid, '"]']
        allocation.append("}")
    allocation.append("}")
    summary: list[str | ColumnElement[Any]] = ['"', uuid, '":{"resources":', cand.c.inventories]
    if shape.with_traits:
        t = _TRAITS.alias("t")
        traits = (
            select(store.joined_in_order(t.c.trait, "'\",\"'", t.c.trait.collate("C")))
            .where(t.c.provider_id == cand.c.id)
            .scalar_subquery()
        )
        summary += [',"traits":[', func.coalesce(_text('"') + traits + _text('"'), ""), "]"]
    if shape.with_tree:
        root_uuid, parent_uuid = _tree_columns(cand)
        parent = func.coalesce(_text('"') + parent_uuid + _text('"'), _text("null"))
        summary += [',"parent_provider_uuid":', parent, ',"root_provider_uuid":"', root_uuid, '"']
    summary.append("}")
    per = select(
        cand.c.id, _concat(*allocation).label("allocation"), _concat(*summary).label("summary")
    ).subquery("per")
    return select(
        _concat(
            '{"allocation_requests":[',
            store.joined_in_order(per.c.allocation, "','", per.c.id),
            '],"provider_summaries":{',
            store.joined_in_order(per.c.summary, "','", per.c.id),
            "}}",
        )
    )


def candidates_body(session: Session, request: CandidateRequest, shape: BodyShape) -> bytes | None:
    """The JSON body of GET /allocation_candidates for `request`, made by PostgreSQL (see
    _body_statement); None where the store does not (build it from find_candidates there)."""
    store = store_of(session)
    if not store.candidates_in_sql:
        return None
    key = ("body", shape, _request_key(request))
    if key not in _STATEMENTS:
        _remember(key, _body_statement(store, request, shape))
    statement = _STATEMENTS[key]
    if statement is None:
        return b'{"allocation_requests":[],"provider_summaries":{}}'
    _no_jit(session)
    body = session.execute(statement).scalar_one()
    return str(body).encode()


def find_candidates(
    session: Session, request: CandidateRequest, *, all_resources: bool = True
) -> list[Candidate]:
    """Candidates in provider id order, at most `request.limit`. `all_resources=False` keeps
    only the requested classes in each candidate's resources (Placement before 1.27)."""
    in_sql = store_of(session).candidates_in_sql
    statement = _candidates_statement(request, in_sql)
    if statement is None:
        return []
    totals = request.totals()
    _no_jit(session)
    suffixes = [g.suffix for g in request.groups]
    candidates: dict[int, Candidate] = {}
    for row in session.execute(statement).all():  # one fetchall: far cheaper than row by row
        pid, uuid, generation, root_uuid, parent_uuid, trait_csv = row[:6]
        candidate = candidates[pid] = Candidate(
            pid,
            uuid,
            generation,
            root_uuid,
            parent_uuid,
            dict(totals),
            {suffix: [uuid] for suffix in suffixes},
            traits=sorted(trait_csv.split(",")) if trait_csv else [],
        )
        if in_sql and row[6]:
            resources = candidate.resources
            for item in row[6].split(","):
                rc, capacity, used = item.split(":")
                if all_resources or rc in totals:
                    resources[rc] = {"capacity": int(capacity), "used": int(used)}
    if not in_sql:
        _add_inventories(session, candidates, None if all_resources else totals)
    return list(candidates.values())


def _add_inventories(
    session: Session, candidates: dict[int, Candidate], only: Mapping[str, int] | None
) -> None:
    """The candidates' inventories and usages, by id (SQLite): a second statement, so the
    planner sizes it by the real number of candidates."""
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
        if only is not None:
            query = query.where(inv.c.resource_class.in_(sorted(only)))
        for pid, rc, total, reserved, ratio, used in session.execute(query.order_by(inv.c.resource_class)):
            candidates[pid].resources[rc] = {
                "capacity": capacity_rule.capacity(total, reserved, ratio),
                "used": int(used or 0),
            }


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
