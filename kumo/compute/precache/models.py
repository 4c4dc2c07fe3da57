"""Precache jobs: one row per job, one per (host, image) of the job, and each agent's peer
endpoint (where other hosts of its rack fetch the images it holds)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db import Base, utcnow


class PrecacheJob(Base):
    """States: running -> done | failed | cancelled."""

    __tablename__ = "precache_jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    image_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    aggregate_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="running")
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    start_time: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    end_time: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class PrecacheHost(Base):
    """One image on one host of a job. States: queued -> downloading -> cached | existing |
    error | skipped | unsupported (and downloading -> queued again for a bounded retry)."""

    __tablename__ = "precache_hosts"
    __table_args__ = (
        Index("ix_precache_hosts_job", "job_id"),
        Index("ix_precache_hosts_image", "image_id"),
        Index("ix_precache_hosts_task", "task_id"),
        UniqueConstraint("job_id", "host", "image_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("precache_jobs.id", ondelete="CASCADE"))
    host: Mapped[str] = mapped_column(String(255))
    rack: Mapped[str | None] = mapped_column(String(255), nullable=True)
    image_id: Mapped[str] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    source: Mapped[str | None] = mapped_column(String(300), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    origin_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_from_origin: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_from_peers: Mapped[int] = mapped_column(BigInteger, default=0)
    refused: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # the holders its failed peer copies listed: the planner avoids them for it (origin fallback)
    failed_peers: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class ImagePeer(Base):
    """Where a host's agent serves its verified cached images to peers (registered by it)."""

    __tablename__ = "image_peers"
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    url: Mapped[str] = mapped_column(String(300))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class HostImageCache(Base):
    """The image ids a host's agent last reported holding as verified copies in its cache
    (`PUT /internal/v1/hosts/{host}/image-cache`), and when: a job marks those hosts `existing`
    at once. A stale entry is harmless (a holder that cannot serve is dropped by its peers)."""

    __tablename__ = "host_image_caches"
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    image_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    reported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
