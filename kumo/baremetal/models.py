"""Baremetal tables: nodes (Ironic's node object), their ports (Ironic's port object: a NIC of
the machine, by MAC) and the conductors that drive their BMCs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kumo.baremetal import states
from kumo.db import Base, utcnow


class Node(Base):
    """One physical machine. Its host (ComputeHost and resource provider) is named by its uuid."""

    __tablename__ = "baremetal_nodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    driver: Mapped[str] = mapped_column(String(64))
    driver_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # cpus, memory_mb, local_gb, and the failure-domain labels rack, availability_zone, region
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    instance_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    resource_class: Mapped[str | None] = mapped_column(String(80), nullable=True)
    provision_state: Mapped[str] = mapped_column(String(32), default=states.ENROLL)
    target_provision_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    provision_updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    power_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    target_power_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    maintenance_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    fault: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Consecutive power syncs that could not reach the BMC (maintenance after a few, as Ironic).
    power_sync_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    instance_uuid: Mapped[str | None] = mapped_column(String(36), unique=True, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lessee: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, onupdate=utcnow)


class NodePort(Base):
    """One NIC of a node (Ironic's port). Its MAC is unique in the cloud; a server deployed on
    the node takes the MAC of the node's pxe_enabled port for its Neutron port."""

    __tablename__ = "baremetal_ports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    address: Mapped[str] = mapped_column(String(18), unique=True)  # lower-case colon hex
    node_id: Mapped[int] = mapped_column(ForeignKey("baremetal_nodes.id", ondelete="CASCADE"), index=True)
    pxe_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    local_link_connection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    physical_network: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, onupdate=utcnow)


class Conductor(Base):
    """A live process driving BMCs; alive while its heartbeat is recent."""

    __tablename__ = "baremetal_conductors"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    last_heartbeat: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
