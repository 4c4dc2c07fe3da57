"""The rebalancer's tables: the latest CPU signal per server and per host (one row each, never a
history), the rebalancer's recent moves (cooldown and ping-pong; rows older than a day are
purged as new ones are written), and Watcher's audit templates, audits, action plans, actions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db.base import Base, utcnow


class VmCpuSignal(Base):
    __tablename__ = "rebalance_vm_signals"
    instance_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    run_cores: Mapped[float] = mapped_column(Float)
    delay_cores: Mapped[float] = mapped_column(Float)
    # Consecutive reports armed (kumo.rebalance.core.advance_hot_rounds: hysteresis).
    hot_rounds: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class HostCpuSignal(Base):
    __tablename__ = "rebalance_host_signals"
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    cores: Mapped[float] = mapped_column(Float)
    load1: Mapped[float] = mapped_column(Float)
    demand_cores: Mapped[float] = mapped_column(Float)  # Σ guests' run + delay
    steal_cores: Mapped[float] = mapped_column(Float)  # Σ guests' delay
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RebalanceMove(Base):
    __tablename__ = "rebalance_moves"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    source: Mapped[str] = mapped_column(String(255))
    destination: Mapped[str] = mapped_column(String(255))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AuditTemplate(Base):
    __tablename__ = "watcher_audit_templates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    goal: Mapped[str] = mapped_column(String(63))
    strategy: Mapped[str | None] = mapped_column(String(63), nullable=True)
    scope: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, onupdate=utcnow)


class Audit(Base):
    __tablename__ = "watcher_audits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(63))
    audit_type: Mapped[str] = mapped_column(String(20))  # ONESHOT, CONTINUOUS
    state: Mapped[str] = mapped_column(String(20), index=True)
    goal: Mapped[str] = mapped_column(String(63))
    strategy: Mapped[str | None] = mapped_column(String(63), nullable=True)
    audit_template_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scope: Mapped[list[Any]] = mapped_column(JSON, default=list)
    interval: Mapped[int | None] = mapped_column(Integer, nullable=True)  # seconds, CONTINUOUS
    auto_trigger: Mapped[bool] = mapped_column(Boolean, default=False)
    next_run_time: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, onupdate=utcnow)


# The states of a started plan (PENDING, ONGOING, CANCELLING): at most one plan of the cloud is in
# one of them, which a partial unique index over a constant holds against concurrent starts and
# promotions (PostgreSQL's READ COMMITTED lets two "none is running" checks both pass).
RUNNING_PLAN_STATES = ("PENDING", "ONGOING", "CANCELLING")
_RUNNING = text("state IN ({})".format(", ".join(f"'{s}'" for s in RUNNING_PLAN_STATES)))


class ActionPlan(Base):
    __tablename__ = "watcher_action_plans"
    __table_args__ = (
        Index(
            "uq_watcher_action_plans_one_running",
            text("(1)"),
            unique=True,
            postgresql_where=_RUNNING,
            sqlite_where=_RUNNING,
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    audit_uuid: Mapped[str] = mapped_column(String(36), index=True)
    strategy: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(20), index=True)
    # Efficacy indicators and the plan's skipped servers with their reasons (kumo.rebalance.core).
    efficacy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    skipped: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, onupdate=utcnow)


class Action(Base):
    __tablename__ = "watcher_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    action_plan_uuid: Mapped[str] = mapped_column(String(36), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    action_type: Mapped[str] = mapped_column(String(63), default="migrate")
    input_parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(20))
    status_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    parents: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, onupdate=utcnow)
