"""The API side of the metadata service: one instance's bundle, read in one or two flat
statements by key (the instance's row with its metadata JSON; its key pair's type when it has
one) plus the networking side's ports through a hook (one statement for an instance without
ports, a few by key for one with them: kumo.metadata.ports), never a join of two one-to-many
tables (Nova bug 1799298: Workday's 50 × 50 = 2,500 rows per request)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.compute.models import Instance, KeyPair
from kumo.errors import NotFound
from kumo.metadata.bundle import Bundle, PortInfo, PublicKey

# The ports plugged into an instance, with their subnets: the networking service registers its
# reader at start-up (kumo.wiring.install); until then instances have none.
PortsOf = Callable[[Session, str], list[PortInfo]]


def _no_ports(session: Session, instance_uuid: str) -> list[PortInfo]:
    return []


_ports_of: PortsOf = _no_ports


def set_ports_hook(hook: PortsOf | None) -> None:
    """Register the reader of an instance's ports (None: back to none)."""
    global _ports_of
    _ports_of = hook or _no_ports


_COLUMNS = (
    Instance.id,
    Instance.uuid,
    Instance.name,
    Instance.hostname,
    Instance.project_id,
    Instance.user_id,
    Instance.availability_zone,
    Instance.launch_index,
    Instance.reservation_id,
    Instance.image_ref,
    Instance.flavor,
    Instance.key_name,
    Instance.key_data,
    Instance.user_data,
    Instance.admin_pass,
    Instance.metadata_,
)


def _ec2_id(prefix: str, value: int) -> str:
    return f"{prefix}-{value & 0xFFFFFFFF:08x}"


def read_bundle(session: Session, instance_uuid: str) -> Bundle:
    row = session.execute(
        select(*_COLUMNS).where(Instance.uuid == instance_uuid, Instance.deleted.is_(False))
    ).one_or_none()
    if row is None:
        raise NotFound(f"Instance {instance_uuid} could not be found.")
    keys = []
    if row.key_name and row.key_data:
        key_type = session.scalar(
            select(KeyPair.type).where(KeyPair.user_id == row.user_id, KeyPair.name == row.key_name)
        )
        keys.append(PublicKey(name=row.key_name, type=key_type or "ssh", data=row.key_data))
    image_number = int(row.image_ref.replace("-", "")[:8], 16) if _hex8(row.image_ref) else 0
    return Bundle(
        uuid=row.uuid,
        name=row.name,
        hostname=row.hostname or row.name,
        project_id=row.project_id,
        availability_zone=row.availability_zone or "nova",
        launch_index=row.launch_index,
        reservation_id=row.reservation_id,
        ec2_instance_id=_ec2_id("i", row.id),
        ec2_image_id=_ec2_id("ami", image_number),
        instance_type=str((row.flavor or {}).get("name", "")),
        public_keys=keys,
        meta={str(k): str(v) for k, v in (row.metadata_ or {}).items()},
        user_data_b64=row.user_data,
        admin_pass=row.admin_pass,
        ports=_ports_of(session, row.uuid),
    )


def _hex8(text: str) -> bool:
    head = text.replace("-", "")[:8]
    return len(head) == 8 and all(c in "0123456789abcdefABCDEF" for c in head)
