"""Placement tables: resource providers, their inventories, and allocations against them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db import Base, utcnow


class ResourceProvider(Base):
    __tablename__ = "resource_providers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Bumped by every change to inventory or allocations: the compare-and-swap token of claims.
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Inventory(Base):
    __tablename__ = "inventories"
    __table_args__ = (Index("ix_inventories_class_provider", "resource_class", "provider_id"),)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("resource_providers.id", ondelete="CASCADE"), primary_key=True
    )
    resource_class: Mapped[str] = mapped_column(String(255), primary_key=True)
    total: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    min_unit: Mapped[int] = mapped_column(Integer, default=1)
    max_unit: Mapped[int] = mapped_column(Integer)
    step_size: Mapped[int] = mapped_column(Integer, default=1)
    allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)


class Allocation(Base):
    __tablename__ = "allocations"
    # Covering index: usage sums per provider and class read the index alone.
    __table_args__ = (Index("ix_allocations_provider_class", "provider_id", "resource_class", "used"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("resource_providers.id", ondelete="CASCADE"))
    consumer_id: Mapped[str] = mapped_column(String(36), index=True)
    resource_class: Mapped[str] = mapped_column(String(255))
    used: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
