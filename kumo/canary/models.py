"""The canaries' results: one row per canary run, as its runner reported it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db import Base, utcnow


class CanaryRun(Base):
    __tablename__ = "canary_runs"
    __table_args__ = (
        Index("ix_canary_runs_host", "host", "id"),
        Index("ix_canary_runs_target", "scope", "target", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    scope: Mapped[str] = mapped_column(String(16))  # "az", "host" or "migration"
    target: Mapped[str] = mapped_column(String(255))  # the zone or the host asked for
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)  # where the server landed
    ok: Mapped[bool] = mapped_column(Boolean)
    failed_step: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # [{"step", "ok", "request_id", "seconds", "detail"}]: each step's request id is the
    # instance action's (GET /servers/{id}/os-instance-actions/{request_id})
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    server_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the report's
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    verdict: Mapped[str | None] = mapped_column(String(16), nullable=True)  # the host's, after this run
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
