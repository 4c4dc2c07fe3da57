"""Traits: the standard ones of os-traits, custom CUSTOM_* ones, and each provider's set."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.orm import Session

from kumo.errors import BadRequest, Conflict, NotFound
from kumo.placement.api.providers import Provider, bump_generation
from kumo.placement.api_models import CustomTrait, ProviderTrait

CUSTOM_TRAIT = re.compile(r"^CUSTOM_[A-Z0-9_]+$")
MAX_NAME = 255  # Placement's maxLength, and the name column's


@cache
def standard_traits() -> frozenset[str]:
    import os_traits

    return frozenset(os_traits.get_traits())


def unknown_traits(session: Session, names: Iterable[str]) -> list[str]:
    """The names that are neither standard nor created custom traits (no query when all are
    standard)."""
    rest = set(names) - standard_traits()
    if not rest:
        return []
    known = set(session.scalars(select(CustomTrait.name).where(CustomTrait.name.in_(sorted(rest)))))
    return sorted(rest - known)


def require_traits(session: Session, names: Iterable[str]) -> None:
    missing = unknown_traits(session, names)
    if missing:
        raise BadRequest(f"No such trait(s): {', '.join(missing)}")


def list_traits(
    session: Session,
    *,
    names: Iterable[str] | None = None,
    prefix: str | None = None,
    associated: bool | None = None,
) -> list[str]:
    """All traits, or those `names` (in:), or starting with `prefix` (startswith:); with
    `associated` only those some provider has (True) or none has (False)."""
    every = set(standard_traits()) | set(session.scalars(select(CustomTrait.name)))
    if names is not None:
        every &= set(names)
    if prefix is not None:
        every = {t for t in every if t.startswith(prefix)}
    if associated is not None:
        used = set(session.scalars(select(ProviderTrait.trait).distinct()))
        every = every & used if associated else every - used
    return sorted(every)


def trait_exists(session: Session, name: str) -> bool:
    return not unknown_traits(session, [name])


def create_custom_trait(session: Session, name: str) -> bool:
    """True when created, False when it already existed."""
    if not CUSTOM_TRAIT.match(name):
        raise BadRequest(f"The trait {name} is invalid: custom traits must match {CUSTOM_TRAIT.pattern}.")
    if len(name) > MAX_NAME:
        raise BadRequest(f"The trait {name} is invalid: it is longer than {MAX_NAME} characters.")
    if trait_exists(session, name):
        return False
    session.execute(insert(CustomTrait).values(name=name))
    return True


def delete_custom_trait(session: Session, name: str) -> None:
    if name in standard_traits():
        raise BadRequest(f"Cannot delete standard trait {name}.")
    if session.get(CustomTrait, name) is None:
        raise NotFound(f"No such trait(s): {name}")
    if session.execute(select(exists().where(ProviderTrait.trait == name))).scalar():
        raise Conflict(f"The trait {name} is in use by a resource provider.")
    session.execute(delete(CustomTrait).where(CustomTrait.name == name))


def provider_traits(session: Session, provider_id: int) -> list[str]:
    return sorted(
        session.scalars(select(ProviderTrait.trait).where(ProviderTrait.provider_id == provider_id))
    )


def set_provider_traits(session: Session, provider: Provider, names: Iterable[str], seen: int | None) -> int:
    """Replace the provider's traits, compare-and-swapping its generation (`seen`, or
    unconditionally when None). Returns the new generation."""
    wanted = sorted(set(names))
    require_traits(session, wanted)
    generation = bump_generation(session, provider.id, seen)
    session.execute(delete(ProviderTrait).where(ProviderTrait.provider_id == provider.id))
    if wanted:
        session.execute(insert(ProviderTrait), [{"provider_id": provider.id, "trait": t} for t in wanted])
    return generation
