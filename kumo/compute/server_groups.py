"""Server groups: an affinity policy over the servers booted into them (os-server-groups)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import params, quotas
from kumo.compute.microversion import Microversion
from kumo.compute.models import Instance, ServerGroup, ServerGroupMember
from kumo.errors import BadRequest, Forbidden, NotFound

SOFT_POLICY_VERSION = "2.15"
OWNER_VERSION = "2.13"
POLICY_VERSION = "2.64"
POLICIES = ("affinity", "anti-affinity")
SOFT_POLICIES = ("soft-affinity", "soft-anti-affinity")


@dataclass(frozen=True)
class CreateRequest:
    name: str
    policy: str
    rules: dict[str, Any] = field(default_factory=dict)


def _allowed_policies(mv: Microversion) -> tuple[str, ...]:
    return POLICIES + SOFT_POLICIES if mv.at_least(SOFT_POLICY_VERSION) else POLICIES


def parse_create(body: Any, mv: Microversion) -> CreateRequest:
    """`policy` (+ `rules`) from 2.64, a one-item `policies` list before."""
    data = params.body_object(body, "server_group")
    allowed = _allowed_policies(mv)
    if mv.at_least(POLICY_VERSION):
        params.reject_unknown(data, {"name", "policy", "rules"}, "server_group")
        if "name" not in data or "policy" not in data:
            missing = "name" if "name" not in data else "policy"
            raise BadRequest(
                f"Invalid input for field/attribute server_group. '{missing}' is a required property"
            )
        policy = data["policy"]
        if policy not in allowed:
            raise BadRequest(
                f"Invalid input for field/attribute policy. Value: {policy}. "
                f"{policy!r} is not one of {list(allowed)}"
            )
        rules = _rules(data.get("rules", {}))
        if rules and policy != "anti-affinity":
            raise BadRequest("Only anti-affinity policy supports rules.")
        return CreateRequest(params.name_value(data["name"]), policy, rules)
    params.reject_unknown(data, {"name", "policies"}, "server_group")
    if "name" not in data or "policies" not in data:
        missing = "name" if "name" not in data else "policies"
        raise BadRequest(
            f"Invalid input for field/attribute server_group. '{missing}' is a required property"
        )
    policies = data["policies"]
    if not isinstance(policies, list) or len(policies) != 1 or policies[0] not in allowed:
        raise BadRequest(
            f"Invalid input for field/attribute policies. Value: {policies!r}. "
            f"Exactly one of {list(allowed)} is required"
        )
    return CreateRequest(params.name_value(data["name"]), policies[0])


def _rules(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(
            f"Invalid input for field/attribute rules. Value: {value!r}. is not of type 'object'"
        )
    params.reject_unknown(value, {"max_server_per_host"}, "rules")
    if "max_server_per_host" in value:
        return {
            "max_server_per_host": params.int_value(value["max_server_per_host"], "max_server_per_host", 1)
        }
    return {}


@dataclass(frozen=True)
class GroupInfo:
    group: ServerGroup
    members: tuple[str, ...]


def _members(session: Session, group_uuids: list[str]) -> dict[str, list[str]]:
    """Member instance uuids per group, leaving out deleted instances."""
    found: dict[str, list[str]] = {u: [] for u in group_uuids}
    if not group_uuids:
        return found
    rows = session.execute(
        select(ServerGroupMember.group_uuid, ServerGroupMember.instance_uuid)
        .outerjoin(Instance, Instance.uuid == ServerGroupMember.instance_uuid)
        .where(
            ServerGroupMember.group_uuid.in_(group_uuids),
            or_(Instance.id.is_(None), Instance.deleted.is_(False)),
        )
        .order_by(ServerGroupMember.instance_uuid)
    )
    for group_uuid, instance_uuid in rows:
        found[group_uuid].append(instance_uuid)
    return found


def _info(session: Session, group: ServerGroup) -> GroupInfo:
    return GroupInfo(group, tuple(_members(session, [group.uuid])[group.uuid]))


def create_group(session: Session, ctx: RequestContext, req: CreateRequest) -> GroupInfo:
    ctx.require_writer()
    project_id = ctx.project_id or ""
    quotas.check_server_group_quota(session, project_id)
    group = ServerGroup(
        uuid=str(uuid.uuid4()),
        name=req.name,
        project_id=project_id,
        user_id=ctx.user_id,
        policy=req.policy,
        rules=dict(req.rules),
    )
    session.add(group)
    session.flush()
    return GroupInfo(group, ())


def _get(session: Session, ctx: RequestContext, group_uuid: str) -> ServerGroup:
    group = session.scalar(select(ServerGroup).where(ServerGroup.uuid == group_uuid))
    if group is None or not ctx.owns(group.project_id):
        raise NotFound(f"Instance group {group_uuid} could not be found.")
    return group


def get_group(session: Session, ctx: RequestContext, group_uuid: str) -> GroupInfo:
    return _info(session, _get(session, ctx, group_uuid))


@dataclass(frozen=True)
class ListQuery:
    all_projects: bool = False
    limit: int | None = None
    offset: int = 0


def parse_list_query(all_projects: str | None, limit: str | None, offset: str | None) -> ListQuery:
    page = params.page(limit, None)
    start = 0
    if offset is not None:
        try:
            start = int(offset)
        except ValueError:
            raise BadRequest("offset param must be an integer") from None
        if start < 0:
            raise BadRequest("offset param must be positive")
    return ListQuery(all_projects=all_projects is not None, limit=page.limit or None, offset=start)


def list_groups(session: Session, ctx: RequestContext, query: ListQuery) -> list[GroupInfo]:
    stmt = select(ServerGroup).order_by(ServerGroup.id)
    if query.all_projects:
        if not ctx.is_admin:
            raise Forbidden(
                "Policy doesn't allow os_compute_api:os-server-groups:index:all_projects to be performed."
            )
    else:
        stmt = stmt.where(ServerGroup.project_id == (ctx.project_id or ""))
    stmt = stmt.offset(query.offset).limit(query.limit or params.MAX_LIMIT)
    groups = list(session.scalars(stmt))
    members = _members(session, [g.uuid for g in groups])
    return [GroupInfo(g, tuple(members[g.uuid])) for g in groups]


def delete_group(session: Session, ctx: RequestContext, group_uuid: str) -> None:
    ctx.require_writer()
    group = _get(session, ctx, group_uuid)
    session.query(ServerGroupMember).filter(ServerGroupMember.group_uuid == group.uuid).delete()
    session.delete(group)
    session.flush()
