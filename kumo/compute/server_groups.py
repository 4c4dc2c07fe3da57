"""Server groups: an affinity policy over the servers booted into them (os-server-groups)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import params, quotas
from kumo.compute.lifecycle import migration_consumer
from kumo.compute.microversion import Microversion
from kumo.compute.models import ComputeHost, Instance, ServerGroup, ServerGroupMember
from kumo.errors import BadRequest, Forbidden, NotFound
from kumo.placement.models import Allocation
from kumo.scheduler import filters
from kumo.scheduler.core import Candidate
from kumo.scheduler.filters import FORCED_HOST_FILTERS, Filter
from kumo.scheduler.request import FAILURE_DOMAINS, GroupSpec, ScheduleRequest
from kumo.scheduler.snapshot import Snapshot

SOFT_POLICY_VERSION = "2.15"
OWNER_VERSION = "2.13"
POLICY_VERSION = "2.64"
POLICIES = ("affinity", "anti-affinity")
# kumo's extension: rules["failure_domain"] in host | rack | az | region, for every policy
# (max_server_per_host then counts per domain). "No policy" is a server outside any group.
FAILURE_DOMAIN_RULE = "failure_domain"
SPREAD_NOT_HONOURED_EVENT = "server_group_spread_not_honoured"
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
        if "max_server_per_host" in rules and policy not in ("anti-affinity", "soft-anti-affinity"):
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
    params.reject_unknown(value, {"max_server_per_host", FAILURE_DOMAIN_RULE}, "rules")
    rules: dict[str, Any] = {}
    if "max_server_per_host" in value:
        rules["max_server_per_host"] = params.int_value(
            value["max_server_per_host"], "max_server_per_host", 1
        )
    if FAILURE_DOMAIN_RULE in value:
        domain = value[FAILURE_DOMAIN_RULE]
        if domain not in FAILURE_DOMAINS:
            raise BadRequest(
                f"Invalid input for field/attribute {FAILURE_DOMAIN_RULE}. Value: {domain}. "
                f"{domain!r} is not one of {list(FAILURE_DOMAINS)}"
            )
        rules[FAILURE_DOMAIN_RULE] = domain
    return rules


# ---------------------------------------------------------------- HA groups at claim time


def lock_for_claim(session: Session, snapshot: Snapshot, group_uuid: str) -> Snapshot:
    """Serialize claims into one group and return the snapshot with the group's committed
    members. Bumping the group's generation row-locks it on PostgreSQL until this transaction
    ends (SQLite's writer lock already serializes); the members are read after the lock, so a
    claim committed by another worker meanwhile is seen. A member occupies every host it holds
    allocations on (both ends of a move in flight) and the host it is recorded on."""
    session.execute(
        update(ServerGroup)
        .where(ServerGroup.uuid == group_uuid)
        .values(generation=ServerGroup.generation + 1)
        .execution_options(synchronize_session=False)
    )
    members = list(  # by the membership table's primary key, not a scan of instances
        session.execute(
            select(Instance.uuid, Instance.host)
            .join(ServerGroupMember, ServerGroupMember.instance_uuid == Instance.uuid)
            .where(ServerGroupMember.group_uuid == group_uuid, Instance.deleted.is_(False))
        )
    )
    occupied: dict[str, set[str]] = {uuid_: {host} if host else set() for uuid_, host in members}
    if occupied:
        consumers = {uuid_: uuid_ for uuid_ in occupied}
        consumers.update({migration_consumer(uuid_): uuid_ for uuid_ in occupied})
        rows = session.execute(
            select(Allocation.consumer_id, ComputeHost.name)
            .join(ComputeHost, ComputeHost.provider_id == Allocation.provider_id)
            .where(Allocation.consumer_id.in_(list(consumers)))
            .distinct()
        )
        for consumer_id, host_name in rows:
            occupied[consumers[consumer_id]].add(host_name)
    counts: dict[str, int] = {}
    for hosts in occupied.values():
        for host_name in hosts:
            counts[host_name] = counts.get(host_name, 0) + 1
    return snapshot.with_group_hosts(group_uuid, counts)


def claim_candidates(
    candidates: Sequence[Candidate], request: ScheduleRequest, snapshot: Snapshot
) -> tuple[Candidate, ...]:
    """For a soft group, only the candidates as good for the group as the best one: when their
    claims conflict the instance waits for the next pass rather than fall back to a rack with
    more members (the snapshot's provider generations may be older than the group's members)."""
    group = request.group
    if group is None or group.policy not in SOFT_POLICIES or not candidates:
        return tuple(candidates)
    domain = group.failure_domain

    def members(candidate: Candidate) -> int:
        host = snapshot.hosts.get(candidate.host)
        value = host.failure_domain(domain) if host is not None else None
        return snapshot.group_members_in(group.uuid, domain, value)

    best = members(candidates[0])
    return tuple(c for c in candidates if members(c) == best)


def move_filters(group: GroupSpec | None, forced: bool) -> tuple[Filter, ...] | None:
    """The filters for a move: a move to a named host skips placement policy (as a forced
    boot does) but never the server group's, so a migration cannot break a hard group."""
    if not forced:
        return None
    if group is None:
        return FORCED_HOST_FILTERS
    return (*FORCED_HOST_FILTERS, filters.group_affinity_filter, filters.group_anti_affinity_filter)


def spread_not_honoured_message(group: GroupSpec) -> str:
    domain = group.failure_domain
    where = f"the group's {domain}" if group.policy == "soft-affinity" else f"another {domain}"
    return f"{group.policy} over {domain} could not be honoured: no capacity left in {where}"


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
    project_id = ctx.require_project("os_compute_api:os-server-groups:create")
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
        number = params.int_text(offset)
        if number is None:
            raise BadRequest("offset param must be an integer")
        start = number
        if start < 0:
            raise BadRequest("offset param must be positive")
        start = min(start, params.MAX_INT)  # past every row; never beyond the database's range
    return ListQuery(all_projects=all_projects is not None, limit=page.limit or None, offset=start)


def list_groups(session: Session, ctx: RequestContext, query: ListQuery) -> list[GroupInfo]:
    stmt = select(ServerGroup).order_by(ServerGroup.id)
    if query.all_projects:
        if not ctx.is_admin:
            raise Forbidden(
                "Policy doesn't allow os_compute_api:os-server-groups:index:all_projects to be performed."
            )
    else:
        project_id = ctx.require_project("os_compute_api:os-server-groups:index")
        stmt = stmt.where(ServerGroup.project_id == project_id)
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
