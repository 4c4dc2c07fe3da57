"""Inventories of a provider. Every write bumps the provider generation in its transaction
(compare-and-swap on the generation the client saw, when it sends one)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from kumo.errors import BadRequest, Conflict, NotFound
from kumo.placement.api.exceptions import InventoryInUse
from kumo.placement.api.providers import Provider, bump_generation
from kumo.placement.api.resource_classes import require_classes
from kumo.placement.models import Allocation, Inventory
from kumo.validation import MAX_INT

FIELDS = ("total", "reserved", "min_unit", "max_unit", "step_size", "allocation_ratio")
DEFAULTS: dict[str, Any] = {
    "reserved": 0,
    "min_unit": 1,
    "max_unit": MAX_INT,
    "step_size": 1,
    "allocation_ratio": 1.0,
}

Record = dict[str, Any]


def inventories(session: Session, provider_id: int) -> dict[str, Record]:
    rows = session.scalars(
        select(Inventory).where(Inventory.provider_id == provider_id).order_by(Inventory.resource_class)
    )
    return {inv.resource_class: {f: getattr(inv, f) for f in FIELDS} for inv in rows}


def _complete(
    resource_class: str, values: Mapping[str, Any], provider: Provider, reserved_may_equal_total: bool
) -> Record:
    record = {**DEFAULTS, **{k: v for k, v in values.items() if k in FIELDS}}
    record["allocation_ratio"] = float(record["allocation_ratio"])
    total, reserved = record["total"], record["reserved"]
    if reserved > total or (reserved == total and total > 0 and not reserved_may_equal_total):
        raise BadRequest(
            f"Unable to update inventory for resource provider {provider.uuid}: Invalid inventory for "
            f"'{resource_class}' on resource provider '{provider.uuid}'. The reserved value is greater "
            "than total."
        )
    if record["min_unit"] > record["max_unit"]:
        raise BadRequest(
            f"Unable to update inventory for resource provider {provider.uuid}: Invalid inventory for "
            f"'{resource_class}': min_unit is greater than max_unit."
        )
    return record


def _in_use(session: Session, provider_id: int, classes: Iterable[str]) -> list[str]:
    wanted = sorted(set(classes))
    if not wanted:
        return []
    rows = session.scalars(
        select(Allocation.resource_class)
        .where(Allocation.provider_id == provider_id, Allocation.resource_class.in_(wanted))
        .distinct()
    )
    return sorted(rows)


def _write(
    session: Session, provider_id: int, records: Mapping[str, Record], remove: Iterable[str] = ()
) -> None:
    touched = sorted(set(records) | set(remove))
    if touched:
        session.execute(
            delete(Inventory).where(
                Inventory.provider_id == provider_id, Inventory.resource_class.in_(touched)
            )
        )
    if records:
        session.execute(
            insert(Inventory),
            [{"provider_id": provider_id, "resource_class": rc, **r} for rc, r in records.items()],
        )


def set_inventories(
    session: Session,
    provider: Provider,
    data: Mapping[str, Mapping[str, Any]],
    seen: int | None,
    *,
    reserved_may_equal_total: bool = True,
    check_in_use: bool = True,
) -> int:
    """Replace every inventory of the provider. Returns the new generation."""
    require_classes(session, data)
    records = {rc: _complete(rc, values, provider, reserved_may_equal_total) for rc, values in data.items()}
    generation = bump_generation(session, provider.id, seen)
    current = inventories(session, provider.id)
    removed = set(current) - set(records)
    busy = _in_use(session, provider.id, removed) if check_in_use else []
    if busy:
        raise InventoryInUse(
            f"update conflict: Inventory for '{', '.join(busy)}' on resource provider "
            f"'{provider.uuid}' in use."
        )
    _write(session, provider.id, records, removed)
    return generation


def create_inventory(
    session: Session, provider: Provider, resource_class: str, values: Mapping[str, Any], seen: int
) -> int:
    require_classes(session, [resource_class])
    record = _complete(resource_class, values, provider, True)
    generation = bump_generation(session, provider.id, seen)
    if resource_class in inventories(session, provider.id):
        raise Conflict(
            f"Update conflict: Inventory for '{resource_class}' on resource provider '{provider.uuid}' "
            "already exists."
        )
    _write(session, provider.id, {resource_class: record})
    return generation


def update_inventory(
    session: Session,
    provider: Provider,
    resource_class: str,
    values: Mapping[str, Any],
    seen: int,
    *,
    reserved_may_equal_total: bool = True,
) -> int:
    require_classes(session, [resource_class])
    record = _complete(resource_class, values, provider, reserved_may_equal_total)
    generation = bump_generation(session, provider.id, seen)
    if resource_class not in inventories(session, provider.id):
        raise BadRequest(f"No inventory record with resource class for resource provider {provider.uuid}")
    _write(session, provider.id, {resource_class: record})
    return generation


def delete_inventory(session: Session, provider: Provider, resource_class: str) -> None:
    bump_generation(session, provider.id)
    if resource_class not in inventories(session, provider.id):
        raise NotFound(f"No inventory of class {resource_class} found for delete")
    if _in_use(session, provider.id, [resource_class]):
        raise InventoryInUse(
            f"Unable to delete inventory of class {resource_class}: Inventory for '{resource_class}' on "
            f"resource provider '{provider.uuid}' in use."
        )
    _write(session, provider.id, {}, [resource_class])


def delete_all_inventories(session: Session, provider: Provider) -> None:
    bump_generation(session, provider.id)
    current = inventories(session, provider.id)
    busy = _in_use(session, provider.id, current)
    if busy:
        raise InventoryInUse(
            f"Inventory for '{', '.join(busy)}' on resource provider '{provider.uuid}' in use."
        )
    _write(session, provider.id, {}, current)
