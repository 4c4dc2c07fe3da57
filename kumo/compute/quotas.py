"""Quotas: per-project limits over defaults, usage counted from live rows, and the
instance check server create runs (Nova's os-quota-sets, os-quota-class-sets and /limits)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import params
from kumo.compute.microversion import Microversion
from kumo.compute.models import Instance, Quota, ServerGroup
from kumo.config import get_settings
from kumo.errors import BadRequest, Forbidden, OverLimit
from kumo.identity import limits as unified_limits
from kumo.identity.models import Project
from kumo.identity.service import catalog_service_id
from kumo.store.protocol import store_of

# Every resource Nova's quota engine knows, with its built-in default. instances/cores/ram
# come from settings (see defaults()).
_STATIC_DEFAULTS: dict[str, int] = {
    "metadata_items": 128,
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
    "key_pairs": 100,
    "server_groups": 10,
    "server_group_members": 10,
    "security_groups": 10,
    "security_group_rules": 20,
    "floating_ips": 10,
    "fixed_ips": -1,
}
RESOURCES = ("instances", "cores", "ram", *_STATIC_DEFAULTS)

# Resources a microversion no longer shows (nova-network proxies at 2.36, personality at 2.57).
_NETWORK = ("fixed_ips", "floating_ips", "security_group_rules", "security_groups")
_PERSONALITY = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
_GROUPS = ("server_groups", "server_group_members")

_CLASS_PREFIX = "quota-class:"
_COMPUTE_SERVICE_ID = catalog_service_id("compute")
MAX_OWNER = 64  # the width of Quota.project_id: a project id, or _CLASS_PREFIX + a class name


def visible_resources(mv: Microversion) -> tuple[str, ...]:
    """The quota-set keys at this microversion."""
    hidden: set[str] = set()
    if mv.at_least("2.36"):
        hidden.update(_NETWORK)
    if mv.at_least("2.57"):
        hidden.update(_PERSONALITY)
    return tuple(r for r in RESOURCES if r not in hidden)


def class_resources(mv: Microversion) -> tuple[str, ...]:
    """The quota-class-set keys: network ones go and server groups appear at 2.50."""
    hidden: set[str] = set()
    if mv.at_least("2.50"):
        hidden.update(_NETWORK)
    else:
        hidden.update(_GROUPS)
    if mv.at_least("2.57"):
        hidden.update(_PERSONALITY)
    return tuple(r for r in RESOURCES if r not in hidden)


# ---------------------------------------------------------------------------- limits and usage


def _rows(session: Session, owner: str) -> dict[str, int]:
    stmt = select(Quota.resource, Quota.hard_limit).where(Quota.project_id == owner)
    return {resource: limit for resource, limit in session.execute(stmt)}


def defaults(session: Session) -> dict[str, int]:
    """Settings and built-ins, overridden by the `default` quota class."""
    settings = get_settings()
    values = {
        "instances": settings.default_quota_instances,
        "cores": settings.default_quota_cores,
        "ram": settings.default_quota_ram,
        **_STATIC_DEFAULTS,
    }
    values.update({k: v for k, v in _rows(session, _CLASS_PREFIX + "default").items() if k in values})
    # Keystone's registered limits (unified limits) of compute come last: the operator's defaults.
    values.update(unified_limits.compute_overrides(session, _COMPUTE_SERVICE_ID, settings.region))
    return values


def project_limits(session: Session, project_id: str) -> dict[str, int]:
    """The defaults, then the project's os-quota-sets values, then its Keystone limits."""
    values = defaults(session)
    values.update({k: v for k, v in _rows(session, project_id).items() if k in values})
    settings = get_settings()
    values.update(unified_limits.compute_overrides(session, _COMPUTE_SERVICE_ID, settings.region, project_id))
    return values


def usage(session: Session, project_id: str) -> dict[str, int]:
    """What the project holds now: live instances and their flavors' cores and RAM, groups."""
    count, cores, ram = session.execute(
        select(
            func.count(Instance.id),
            func.coalesce(func.sum(Instance.vcpus), 0),
            func.coalesce(func.sum(Instance.memory_mb), 0),
        ).where(Instance.project_id == project_id, Instance.deleted.is_(False))
    ).one()
    groups = session.scalar(select(func.count(ServerGroup.id)).where(ServerGroup.project_id == project_id))
    used = dict.fromkeys(RESOURCES, 0)
    used.update(
        instances=int(count or 0), cores=int(cores or 0), ram=int(ram or 0), server_groups=int(groups or 0)
    )
    return used


# The first key of the project quota locks (pg_advisory_xact_lock(int, int)): "kumo" in ASCII,
# so no other advisory lock of kumo's (or of anyone sharing the database) takes the same pair.
_QUOTA_LOCK_CLASS = 0x6B756D6F


def _project_key(project_id: str) -> int:
    """A stable signed 32-bit key for the project (two projects sharing one only wait on each other)."""
    return int.from_bytes(hashlib.blake2b(project_id.encode(), digest_size=4).digest(), "big", signed=True)


def lock_project(session: Session, project_id: str) -> None:
    """Serialise, until this transaction ends, the quota checks of `project_id`: count after
    this, and what is counted cannot change under the check until its writes commit.

    The store's transaction lock keyed by the project (Store.lock_for_transaction: released at
    commit or rollback, after the commit is visible; the next holder's count, a statement of
    its own, sees it). Other projects never wait on it."""
    store_of(session).lock_for_transaction(session, _QUOTA_LOCK_CLASS, _project_key(project_id))


def lock_key_pairs(session: Session, user_id: str) -> None:
    """Serialise, until this transaction ends, the key-pair creates of `user_id` (key pairs are
    counted per user): as lock_project, on a key of the user's own."""
    lock_project(session, f"key-pairs:{user_id}")


def check_instance_quota(session: Session, project_id: str, count: int, vcpus: int, ram: int) -> None:
    """Raise OverLimit unless `count` more instances using `vcpus` cores and `ram` MB in total
    fit the project's quota. The message is Nova's TooManyInstances.

    Locks the project's quota (lock_project) before reading its limits and counting: call it in
    the transaction that writes the instances, so concurrent creates of one project count one
    another's, and a quota update that lowers a limit (it takes the same lock) is seen by every
    create that counts after it. Always, even when instances, cores and RAM are unlimited: the
    limits read before the lock could be about to change (one lock per project is cheap; only
    the count is skipped then)."""
    lock_project(session, project_id)
    limits = project_limits(session, project_id)
    requested = {"instances": count, "cores": vcpus, "ram": ram}
    if all(limits[r] < 0 for r in requested):
        return
    used = usage(session, project_id)
    overs = sorted(r for r, want in requested.items() if limits[r] >= 0 and used[r] + want > limits[r])
    if overs:

        def joined(values: dict[str, int]) -> str:
            return ", ".join(str(values[r]) for r in overs)

        names = ", ".join(overs)
        raise OverLimit(
            f"Quota exceeded for {names}: Requested {joined(requested)}, but already used "
            f"{joined(used)} of {joined(limits)} {names}"
        )


def check_metadata_items(session: Session, project_id: str, count: int) -> None:
    """Raise Forbidden (Nova's 403 MetadataLimitExceeded) when a server would hold more than the
    project's `metadata_items` quota of metadata items; a negative limit is unlimited."""
    allowed = project_limits(session, project_id)["metadata_items"]
    if 0 <= allowed < count:
        raise Forbidden(
            f"Quota exceeded for metadata_items: Maximum number of metadata items exceeds {allowed}"
        )


def check_server_group_quota(session: Session, project_id: str) -> None:
    """Call it in the transaction that writes the group (see check_instance_quota)."""
    lock_project(session, project_id)
    limit = project_limits(session, project_id)["server_groups"]
    if limit >= 0 and usage(session, project_id)["server_groups"] + 1 > limit:
        raise OverLimit("Quota exceeded, too many server groups.")


# ---------------------------------------------------------------------------- os-quota-sets


def _check_project(session: Session, ctx: RequestContext, project_id: str, action: str) -> None:
    if not ctx.is_admin and project_id != ctx.project_id:
        raise Forbidden(f"Policy doesn't allow os_compute_api:os-quota-sets:{action} to be performed.")
    if session.get(Project, project_id) is None:
        raise BadRequest(f"Project ID {project_id} is not a valid project.")


@dataclass(frozen=True)
class Detail:
    limit: int
    in_use: int
    reserved: int = 0


def show(session: Session, ctx: RequestContext, project_id: str) -> dict[str, int]:
    _check_project(session, ctx, project_id, "show")
    return project_limits(session, project_id)


def detail(session: Session, ctx: RequestContext, project_id: str) -> dict[str, Detail]:
    _check_project(session, ctx, project_id, "detail")
    limits = project_limits(session, project_id)
    used = usage(session, project_id)
    return {r: Detail(limit=limits[r], in_use=used[r]) for r in RESOURCES}


def show_defaults(session: Session, ctx: RequestContext, project_id: str) -> dict[str, int]:
    if session.get(Project, project_id) is None:
        raise BadRequest(f"Project ID {project_id} is not a valid project.")
    return defaults(session)


@dataclass(frozen=True)
class Update:
    values: dict[str, int]
    force: bool


def parse_update(body: Any, resources: tuple[str, ...], key: str = "quota_set") -> Update:
    data = params.body_object(body, key)
    allowed = set(resources) | ({"force"} if key == "quota_set" else set())
    params.reject_unknown(data, allowed, key)
    force = params.strict_bool(data.get("force", False), "force") if "force" in data else False
    values = {name: params.int_value(value, name, -1) for name, value in data.items() if name != "force"}
    return Update(values=values, force=force)


def update(session: Session, ctx: RequestContext, project_id: str, change: Update) -> dict[str, int]:
    ctx.require_admin()
    _check_project(session, ctx, project_id, "update")
    if not change.force:
        lock_project(session, project_id)
        used = usage(session, project_id)
        for resource, limit in change.values.items():
            if limit != -1 and limit < used[resource]:
                raise BadRequest(
                    f"Quota limit {limit} for {resource} must be greater than or equal to already used "
                    f"and reserved {used[resource]}."
                )
    _write(session, project_id, change.values)
    return project_limits(session, project_id)


def _write(session: Session, owner: str, values: dict[str, int]) -> None:
    existing = {q.resource: q for q in session.scalars(select(Quota).where(Quota.project_id == owner))}
    for resource, limit in values.items():
        row = existing.get(resource)
        if row is None:
            session.add(Quota(project_id=owner, resource=resource, hard_limit=limit))
        else:
            row.hard_limit = limit
    session.flush()


def revert(session: Session, ctx: RequestContext, project_id: str) -> None:
    """DELETE /os-quota-sets/{project}: back to the defaults."""
    ctx.require_admin()
    session.query(Quota).filter(Quota.project_id == project_id).delete()
    session.flush()


# ---------------------------------------------------------------------------- os-quota-class-sets


def show_class(session: Session, ctx: RequestContext, class_name: str) -> dict[str, int]:
    ctx.require_admin()
    if class_name == "default":
        return defaults(session)
    values = defaults(session)
    values.update({k: v for k, v in _rows(session, _CLASS_PREFIX + class_name).items() if k in values})
    return values


def update_class(session: Session, ctx: RequestContext, class_name: str, change: Update) -> dict[str, int]:
    ctx.require_admin()
    if len(_CLASS_PREFIX + class_name) > MAX_OWNER:  # it would overflow the owner column (PostgreSQL)
        raise BadRequest(
            f"Quota class name {class_name} is longer than {MAX_OWNER - len(_CLASS_PREFIX)} characters."
        )
    _write(session, _CLASS_PREFIX + class_name, change.values)
    return show_class(session, ctx, class_name)


# ---------------------------------------------------------------------------- /limits


def limits_for(
    session: Session, ctx: RequestContext, tenant_id: str | None
) -> tuple[dict[str, int], dict[str, int]]:
    """(limits, usage) of the caller's project, or of `tenant_id` for admins."""
    project_id = tenant_id or ctx.require_project("os_compute_api:limits")
    if project_id != ctx.project_id and not ctx.is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:limits:other_project to be performed.")
    return project_limits(session, project_id), usage(session, project_id)
