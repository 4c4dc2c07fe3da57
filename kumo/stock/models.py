"""Stock requests: a project asks for N machines of a flavor; an admin approves or rejects."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db import Base, utcnow


class StockRequest(Base):
    __tablename__ = "stock_requests"
    __table_args__ = (Index("ix_stock_requests_project_status", "project_id", "status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    project_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    flavor_id: Mapped[str] = mapped_column(String(255))
    count: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    # pending -> approved | rejected (kumo/stock/service.py)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # What the approval moved: host names, and the private aggregate they went to.
    hosts: Mapped[list[str]] = mapped_column(JSON, default=list)
    aggregate: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
