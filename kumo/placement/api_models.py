"""Tables the Placement API adds beside kumo's providers, inventories and allocations.

Traits and resource classes are stored by name: standard ones come from os-traits and
os-resource-classes and are never stored, custom (CUSTOM_*) ones have a row here. Aggregates are
only associations (Placement has no aggregate object beyond its uuid). Provider trees live in a
side table: a provider without a row is a root.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db import Base, utcnow


class CustomTrait(Base):
    __tablename__ = "placement_custom_traits"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ProviderTrait(Base):
    __tablename__ = "placement_provider_traits"
    # The primary key (provider, trait) answers "has this provider trait T" by index alone.
    __table_args__ = (Index("ix_placement_provider_traits_trait", "trait"),)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("resource_providers.id", ondelete="CASCADE"), primary_key=True
    )
    trait: Mapped[str] = mapped_column(String(255), primary_key=True)


class ProviderAggregate(Base):
    __tablename__ = "placement_provider_aggregates"
    __table_args__ = (Index("ix_placement_provider_aggregates_aggregate", "aggregate_uuid"),)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("resource_providers.id", ondelete="CASCADE"), primary_key=True
    )
    aggregate_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)


class CustomResourceClass(Base):
    __tablename__ = "placement_custom_resource_classes"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ProviderParent(Base):
    """Nested providers: parent and root of every non-root provider."""

    __tablename__ = "placement_provider_parents"
    __table_args__ = (Index("ix_placement_provider_parents_root", "root_id"),)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("resource_providers.id", ondelete="CASCADE"), primary_key=True
    )
    parent_id: Mapped[int] = mapped_column(ForeignKey("resource_providers.id"), index=True)
    root_id: Mapped[int] = mapped_column(ForeignKey("resource_providers.id"))


class Consumer(Base):
    """Who owns a consumer's allocations, and its generation (Placement >= 1.28).

    kumo's own scheduler claims without a row here: such a consumer shows generation 0 and the
    project and user of the instance with its uuid."""

    __tablename__ = "placement_consumers"
    __table_args__ = (Index("ix_placement_consumers_project_user", "project_id", "user_id"),)
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(255))
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
