"""Seed helpers for placement tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from kumo.compute.models import Aggregate, AggregateHost, ComputeHost, Instance
from kumo.db import Database, utcnow
from kumo.placement.models import Allocation, Inventory, ResourceProvider


def add_host(
    session: Session,
    name: str,
    inventory: dict[str, int] | None = None,
    *,
    ratio: float = 1.0,
    reserved: int = 0,
    max_unit: int | None = None,
    **host_fields: object,
) -> ResourceProvider:
    """A compute host with its resource provider and one inventory row per class."""
    provider = ResourceProvider(uuid=str(uuid.uuid4()), name=name, generation=0)
    session.add(provider)
    session.flush()
    for rc, total in (inventory or {"VCPU": 8, "MEMORY_MB": 8192}).items():
        session.add(
            Inventory(
                provider_id=provider.id,
                resource_class=rc,
                total=total,
                reserved=reserved,
                max_unit=max_unit or total,
                allocation_ratio=ratio,
            )
        )
    fields: dict[str, object] = {"last_heartbeat": utcnow(), **host_fields}
    session.add(
        ComputeHost(
            name=name,
            uuid=str(uuid.uuid4()),
            service_uuid=str(uuid.uuid4()),
            provider_id=provider.id,
            **fields,
        )
    )
    session.flush()
    return provider


def add_aggregate(session: Session, name: str, hosts: list[str], metadata: dict[str, str]) -> None:
    aggregate = Aggregate(uuid=str(uuid.uuid4()), name=name, metadata_=metadata)
    session.add(aggregate)
    session.flush()
    session.add_all(AggregateHost(aggregate_id=aggregate.id, host=host) for host in hosts)
    session.flush()


def add_instance(
    session: Session,
    instance_uuid: str,
    host: str | None,
    server_group: str | None = None,
    deleted: bool = False,
) -> None:
    session.add(
        Instance(
            uuid=instance_uuid,
            project_id="p1",
            user_id="u1",
            name=instance_uuid,
            flavor={},
            host=host,
            server_group=server_group,
            deleted=deleted,
        )
    )
    session.flush()


def allocate(
    session: Session, provider: ResourceProvider, consumer_id: str, resources: dict[str, int]
) -> None:
    """Raw allocation rows (test set-up only: bypasses the generation protocol)."""
    session.add_all(
        Allocation(provider_id=provider.id, consumer_id=consumer_id, resource_class=rc, used=n)
        for rc, n in resources.items()
    )
    session.flush()


@contextmanager
def recorded_statements(db: Database) -> Iterator[list[str]]:
    """The SQL of every statement `db` sends meanwhile, in order."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
