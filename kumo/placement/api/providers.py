"""Resource providers: create, show, list with filters, update, delete, and the generation
compare-and-swap every write to a provider goes through."""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Table, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from kumo.errors import BadRequest, NotFound
from kumo.placement.api.exceptions import (
    CannotDeleteParent,
    ConcurrentUpdate,
    DuplicateName,
    ProviderInUse,
)
from kumo.placement.api_models import ProviderParent
from kumo.placement.candidates import provider_matches, root_of_uuid
from kumo.placement.models import Allocation, ResourceProvider

_RP = cast(Table, ResourceProvider.__table__)
_PARENTS = cast(Table, ProviderParent.__table__)

# A rule of a service above placement that keeps a provider from being deleted: (session, the
# provider's id) -> why it is in use, or None. Registered at start-up (keep_providers_in_use);
# delete_provider refuses a provider any of them names.
InUseRule = Callable[[Session, int], str | None]
_IN_USE_RULES: dict[str, InUseRule] = {}


def keep_providers_in_use(name: str, rule: InUseRule) -> None:
    """delete_provider refuses, from now on, a provider `rule` says is in use (registering a
    name again replaces its rule)."""
    _IN_USE_RULES[name] = rule


@dataclass(frozen=True)
class Provider:
    id: int
    uuid: str
    name: str
    generation: int
    root_uuid: str
    parent_uuid: str | None
    updated_at: dt.datetime | None = None


@dataclass
class ProviderFilters:
    name: str | None = None
    uuid: str | None = None
    in_tree: str | None = None
    resources: dict[str, int] = field(default_factory=dict)
    required: list[frozenset[str]] = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)
    member_of: list[frozenset[str]] = field(default_factory=list)
    forbidden_aggregates: set[str] = field(default_factory=set)


def _select() -> Any:
    rp, pp, root, parent = _RP.alias("rp"), _PARENTS.alias("pp"), _RP.alias("root"), _RP.alias("parent")
    return (
        rp,
        pp,
        (
            select(
                rp.c.id,
                rp.c.uuid,
                rp.c.name,
                rp.c.generation,
                func.coalesce(root.c.uuid, rp.c.uuid).label("root_uuid"),
                parent.c.uuid.label("parent_uuid"),
                rp.c.updated_at,
            )
            .select_from(
                rp.outerjoin(pp, pp.c.provider_id == rp.c.id)
                .outerjoin(root, root.c.id == pp.c.root_id)
                .outerjoin(parent, parent.c.id == pp.c.parent_id)
            )
            .order_by(rp.c.id)
        ),
    )


def _provider(row: Any) -> Provider:
    return Provider(
        row.id, row.uuid, row.name, row.generation, row.root_uuid, row.parent_uuid, row.updated_at
    )


def find_provider(session: Session, uuid: str) -> Provider | None:
    rp, _pp, query = _select()
    row = session.execute(query.where(rp.c.uuid == uuid)).first()
    return _provider(row) if row else None


def get_provider(session: Session, uuid: str) -> Provider:
    provider = find_provider(session, uuid)
    if provider is None:
        raise NotFound(f"No resource provider with uuid {uuid} found")
    return provider


def providers_by_uuid(session: Session, uuids: Iterable[str]) -> dict[str, Provider]:
    wanted = sorted(set(uuids))
    if not wanted:
        return {}
    rp, _pp, query = _select()
    return {row.uuid: _provider(row) for row in session.execute(query.where(rp.c.uuid.in_(wanted)))}


def list_providers(session: Session, filters: ProviderFilters) -> list[Provider]:
    rp, pp, query = _select()
    where: list[ColumnElement[bool]] = []
    if filters.name is not None:
        where.append(rp.c.name == filters.name)
    if filters.uuid is not None:
        where.append(rp.c.uuid == filters.uuid)
    if filters.in_tree is not None:
        where.append(func.coalesce(pp.c.root_id, rp.c.id) == root_of_uuid(filters.in_tree))
    where += provider_matches(
        rp.c.id,
        resources=filters.resources,
        required=filters.required,
        forbidden=filters.forbidden,
        member_of=filters.member_of,
        forbidden_aggregates=filters.forbidden_aggregates,
    )
    return [_provider(row) for row in session.execute(query.where(*where))]


def bump_generation(session: Session, provider_id: int, seen: int | None = None) -> int:
    """generation += 1 (only if it still is `seen`, when given): the new generation, or
    ConcurrentUpdate. The row lock it takes also serialises writers of this provider."""
    stmt = update(_RP).where(_RP.c.id == provider_id)
    if seen is not None:
        stmt = stmt.where(_RP.c.generation == seen)
    new = session.execute(stmt.values(generation=_RP.c.generation + 1).returning(_RP.c.generation)).scalar()
    if new is None:
        raise ConcurrentUpdate(
            "resource provider generation conflict: the provider changed since generation "
            f"{seen}. Please update the generation and try again."
        )
    return int(new)


def _check_name(session: Session, name: str, exclude_id: int | None = None) -> None:
    query = select(_RP.c.id).where(_RP.c.name == name)
    if exclude_id is not None:
        query = query.where(_RP.c.id != exclude_id)
    if session.execute(query).first():
        raise DuplicateName(f"Conflicting resource provider name: {name} already exists.")


def _set_parent(session: Session, provider: Provider, parent_uuid: str) -> None:
    parent = find_provider(session, parent_uuid)
    if parent is None:
        raise BadRequest(f"parent provider UUID does not exist: {parent_uuid}")
    if parent.root_uuid == provider.uuid:
        raise BadRequest("creating loop in the provider tree is not allowed.")
    root_id = session.execute(select(_RP.c.id).where(_RP.c.uuid == parent.root_uuid)).scalar_one()
    session.execute(insert(_PARENTS).values(provider_id=provider.id, parent_id=parent.id, root_id=root_id))
    # The provider was a root: its whole tree moves under the new root.
    session.execute(
        update(_PARENTS)
        .where(_PARENTS.c.root_id == provider.id)
        .values(root_id=root_id)
        .execution_options(synchronize_session=False)
    )


def create_provider(session: Session, name: str, uuid: str | None, parent_uuid: str | None) -> Provider:
    uuid = str(uuidlib.UUID(uuid)) if uuid else str(uuidlib.uuid4())
    if find_provider(session, uuid) is not None:
        raise DuplicateName(f"Conflicting resource provider uuid: {uuid} already exists.")
    _check_name(session, name)
    provider_id = session.execute(
        insert(_RP).values(uuid=uuid, name=name, generation=0).returning(_RP.c.id)
    ).scalar_one()
    if parent_uuid:
        _set_parent(session, Provider(provider_id, uuid, name, 0, uuid, None), parent_uuid)
    return get_provider(session, uuid)


_UNSET: Any = object()


def update_provider(session: Session, uuid: str, name: str, parent_uuid: str | None = _UNSET) -> Provider:
    provider = get_provider(session, uuid)
    _check_name(session, name, exclude_id=provider.id)
    if parent_uuid is not _UNSET and parent_uuid != provider.parent_uuid:
        if provider.parent_uuid is not None:
            raise BadRequest(
                "re-parenting a provider is not currently allowed."
                if parent_uuid
                else "un-parenting a provider is not currently allowed."
            )
        if parent_uuid:
            _set_parent(session, provider, parent_uuid)
    session.execute(
        update(_RP)
        .where(_RP.c.id == provider.id)
        .values(name=name)
        .execution_options(synchronize_session=False)
    )
    return get_provider(session, uuid)


def delete_provider(session: Session, uuid: str) -> None:
    provider = find_provider(session, uuid)
    if provider is None:
        raise NotFound(f"No resource provider with uuid {uuid} found for delete")
    if session.execute(select(exists().where(Allocation.provider_id == provider.id))).scalar():
        raise ProviderInUse(f"Unable to delete resource provider {uuid}: Resource provider has allocations.")
    if session.execute(select(exists().where(_PARENTS.c.parent_id == provider.id))).scalar():
        raise CannotDeleteParent(
            f"Unable to delete parent resource provider {uuid}: It has child resource providers."
        )
    for rule in _IN_USE_RULES.values():
        if (reason := rule(session, provider.id)) is not None:
            raise ProviderInUse(f"Unable to delete resource provider {uuid}: {reason}.")
    result = cast(CursorResult[Any], session.execute(delete(_RP).where(_RP.c.id == provider.id)))
    if result.rowcount != 1:
        raise NotFound(f"No resource provider with uuid {uuid} found for delete")
