"""Neutron's quotas: per-project limits of networks, subnets, ports, security groups and rules
(with Neutron's defaults), usage counted from the rows, and the check a create makes.

A check and the create it guards share one transaction under the project's networking lock
(`lock_project`): on PostgreSQL a transaction-level advisory lock, on SQLite the database's one
write lock. Two workers' creates in one project therefore count each other; other projects
never wait."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kumo.network.attrs import boolean, integer
from kumo.network.errors import InvalidInput, OverQuota
from kumo.network.models import Network, NetworkQuota, Port, SecurityGroup, SecurityGroupRule, Subnet
from kumo.store.protocol import store_of

# Neutron's defaults (neutron/conf/quota.py); -1 is unlimited.
DEFAULTS: dict[str, int] = {
    "network": 100,
    "subnet": 100,
    "port": 500,
    "security_group": 10,
    "security_group_rule": 100,
    "router": 10,
    "floatingip": 50,
    "rbac_policy": 10,
    "subnetpool": -1,
}
_COUNTED: dict[str, Any] = {
    "network": Network,
    "subnet": Subnet,
    "port": Port,
    "security_group": SecurityGroup,
    "security_group_rule": SecurityGroupRule,
}
# The first key of the networking project locks: "knet" in ASCII (compute's quota locks use "kumo").
_LOCK_SPACE = 0x6B6E6574


def lock_project(session: Session, project_id: str) -> None:
    """Serialise, until this transaction ends, the networking creates of `project_id`."""
    key = int.from_bytes(hashlib.blake2b(project_id.encode(), digest_size=4).digest(), "big", signed=True)
    store_of(session).lock_for_transaction(session, _LOCK_SPACE, key)


def limits(session: Session, project_id: str) -> dict[str, int]:
    values = dict(DEFAULTS)
    rows = session.execute(
        select(NetworkQuota.resource, NetworkQuota.limit).where(NetworkQuota.project_id == project_id)
    )
    values.update({resource: limit for resource, limit in rows})
    return values


def usage(session: Session, project_id: str) -> dict[str, int]:
    used = dict.fromkeys(DEFAULTS, 0)
    for resource, model in _COUNTED.items():
        used[resource] = int(session.scalar(select(func.count()).where(model.project_id == project_id)) or 0)
    return used


def details(session: Session, project_id: str) -> dict[str, dict[str, int]]:
    limit, used = limits(session, project_id), usage(session, project_id)
    return {name: {"limit": limit[name], "used": used[name], "reserved": 0} for name in DEFAULTS}


def check(session: Session, project_id: str, resource: str, adding: int = 1) -> None:
    """Lock the project, then refuse (409 OverQuota) when `adding` more would pass the limit."""
    lock_project(session, project_id)
    limit = limits(session, project_id)[resource]
    if limit < 0:
        return
    model = _COUNTED[resource]
    count = int(session.scalar(select(func.count()).where(model.project_id == project_id)) or 0)
    if count + adding > limit:
        raise OverQuota(resource)


def update(session: Session, project_id: str, body: object) -> dict[str, int]:
    """`{"quota": {"network": 10, ...}}`: each a known resource, an integer ≥ -1."""
    if not isinstance(body, dict) or set(body) != {"quota"} or not isinstance(body["quota"], dict):
        raise InvalidInput("Resource body required: an object under 'quota'")
    wanted = dict(body["quota"])
    if not 0 < len(project_id) <= 64:
        raise InvalidInput(f"'{project_id[:70]}' is not a valid project id")
    # quota-check-limit (OSC sends it): refuse a limit below what the project already holds.
    check_limit = boolean(wanted.pop("check_limit", False), "check_limit")
    unknown = sorted(set(wanted) - set(DEFAULTS))
    if unknown:
        raise InvalidInput(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    lock_project(session, project_id)
    used = usage(session, project_id) if check_limit else {}
    for resource, raw in wanted.items():
        value = integer(raw, f"quota {resource}", -1)
        if check_limit and 0 <= value < used[resource]:
            raise InvalidInput(f"quota {resource} {value} is below the {used[resource]} the project holds")
        row = session.get(NetworkQuota, (project_id, resource))
        if row is None:
            session.add(NetworkQuota(project_id=project_id, resource=resource, limit=value))
        else:
            row.limit = value
    session.flush()
    return limits(session, project_id)


def reset(session: Session, project_id: str) -> None:
    session.execute(delete(NetworkQuota).where(NetworkQuota.project_id == project_id))


def projects_with_quotas(session: Session) -> list[tuple[str, dict[str, int]]]:
    projects = session.scalars(select(NetworkQuota.project_id).distinct().order_by(NetworkQuota.project_id))
    return [(project, limits(session, project)) for project in projects]
