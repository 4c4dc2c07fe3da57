"""Placement-side aggregates: the aggregate uuids each provider is associated with.
(Nova's host aggregates are kumo.compute.aggregates; these are Placement's, by uuid only.)"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from kumo.placement.api.providers import Provider, bump_generation
from kumo.placement.api_models import ProviderAggregate


def provider_aggregates(session: Session, provider_id: int) -> list[str]:
    return sorted(
        session.scalars(
            select(ProviderAggregate.aggregate_uuid).where(ProviderAggregate.provider_id == provider_id)
        )
    )


def set_provider_aggregates(
    session: Session, provider: Provider, uuids: Iterable[str], seen: int | None, *, bump: bool = True
) -> int:
    """Replace the provider's aggregates and bump its generation (compare-and-swap on `seen`
    when given, as from microversion 1.19; before it, no bump). Returns the generation."""
    generation = bump_generation(session, provider.id, seen) if bump else provider.generation
    session.execute(delete(ProviderAggregate).where(ProviderAggregate.provider_id == provider.id))
    wanted = sorted(set(uuids))
    if wanted:
        session.execute(
            insert(ProviderAggregate), [{"provider_id": provider.id, "aggregate_uuid": u} for u in wanted]
        )
    return generation
