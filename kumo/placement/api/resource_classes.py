"""Resource classes: the standard ones of os-resource-classes and custom CUSTOM_* ones."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.orm import Session

from kumo.errors import BadRequest, Conflict, NotFound
from kumo.placement.api_models import CustomResourceClass
from kumo.placement.models import Inventory

CUSTOM_CLASS = re.compile(r"^CUSTOM_[A-Z0-9_]+$")
MAX_NAME = 255  # Placement's maxLength, and the name column's


@cache
def standard_classes() -> tuple[str, ...]:
    import os_resource_classes

    return tuple(os_resource_classes.STANDARDS)


def unknown_classes(session: Session, names: Iterable[str]) -> list[str]:
    rest = set(names) - set(standard_classes())
    if not rest:
        return []
    known = set(
        session.scalars(select(CustomResourceClass.name).where(CustomResourceClass.name.in_(sorted(rest))))
    )
    return sorted(rest - known)


def require_classes(session: Session, names: Iterable[str], context: str = "") -> None:
    missing = unknown_classes(session, names)
    if missing:
        raise BadRequest(f"Unknown resource class{context}: {', '.join(missing)}")


def list_classes(session: Session) -> list[str]:
    return [
        *standard_classes(),
        *session.scalars(select(CustomResourceClass.name).order_by(CustomResourceClass.name)),
    ]


def class_exists(session: Session, name: str) -> bool:
    return not unknown_classes(session, [name])


def _check_custom(name: str) -> None:
    if name in standard_classes():
        raise BadRequest(f"Cannot update standard resource class {name}")
    if not CUSTOM_CLASS.match(name):
        raise BadRequest(f"Invalid resource class name {name}: it must match {CUSTOM_CLASS.pattern}")
    if len(name) > MAX_NAME:
        raise BadRequest(f"Invalid resource class name {name}: it is longer than {MAX_NAME} characters")


def create_class(session: Session, name: str) -> None:
    _check_custom(name)
    if class_exists(session, name):
        raise Conflict(f"Conflicting resource class already exists: {name}")
    session.execute(insert(CustomResourceClass).values(name=name))


def ensure_class(session: Session, name: str) -> bool:
    """PUT (1.7+): True when created, False when it was already there."""
    _check_custom(name)
    if class_exists(session, name):
        return False
    session.execute(insert(CustomResourceClass).values(name=name))
    return True


def delete_class(session: Session, name: str) -> None:
    if name in standard_classes():
        raise BadRequest(f"Cannot delete standard resource class {name}")
    if session.get(CustomResourceClass, name) is None:
        raise NotFound(f"No such resource class {name}.")
    if session.execute(select(exists().where(Inventory.resource_class == name))).scalar():
        raise Conflict(f"Unable to delete resource class {name}: it is in use by an inventory.")
    session.execute(delete(CustomResourceClass).where(CustomResourceClass.name == name))
