"""Baremetal stock (LINE's model): stock is host aggregates.

- Public stock of a flavor: an aggregate with metadata baremetal='true' and
  filter_flavor_id=<flavor id> (and no filter_tenant_id). Anyone who may use the flavor lands
  there (AggregateFlavorFilter keeps other flavors out).
- Private stock: the same with filter_tenant_id=<project>, named `<flavor name>.<project id>`
  (LINE's `TEST_N3.small.metal.uuid12345`) and created on the first approval. Only that project
  lands there (AggregateMultiTenancyIsolation) and, with the stock_private_exclusive setting,
  that project lands on no public stock (StockFilter).

A stock request moves through pending -> approved | rejected. Approval moves `count` available
hosts (enabled, nothing allocated on them, unreserved inventory) from the flavor's public stock
to the project's private stock in one transaction: the request row changes state only from
`pending` (a racing second approval finds it approved and returns it unchanged), each host's
resource provider is locked and re-checked for allocations (a server being claimed there at that
moment keeps its host), and each host is taken by deleting its public membership row (rowcount
1, or another approval took it first), so no host moves twice and a short stock moves nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import flavors, params
from kumo.compute.models import Aggregate, AggregateHost, ComputeHost, Flavor, Instance
from kumo.db import utcnow
from kumo.errors import BadRequest, Conflict, NotFound
from kumo.placement import capacity as capacity_sql
from kumo.placement.models import Allocation, Inventory, ResourceProvider
from kumo.stock.models import StockRequest

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
STATUSES = (PENDING, APPROVED, REJECTED)
MAX_COUNT = 1000


# ---------------------------------------------------------------------------- aggregates


def is_baremetal(metadata: dict[str, Any]) -> bool:
    return str(metadata.get("baremetal", "")).lower() == "true"


def _values(metadata: dict[str, Any], key: str) -> set[str]:
    return {v.strip() for v in str(metadata.get(key, "")).split(",") if v.strip()}


def _tenants(metadata: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for key in metadata:
        if key.startswith("filter_tenant_id"):
            found |= _values(metadata, key)
    return found


def public_stock(session: Session, flavor_id: str) -> list[Aggregate]:
    """The flavor's public stock aggregates (by id, so the order is stable)."""
    return [
        a
        for a in session.scalars(select(Aggregate).order_by(Aggregate.id))
        if is_baremetal(a.metadata_ or {})
        and flavor_id in _values(a.metadata_ or {}, "filter_flavor_id")
        and not _tenants(a.metadata_ or {})
    ]


def private_stock_name(flavor: Flavor, project_id: str) -> str:
    return f"{flavor.name}.{project_id}"


def _private_stock(session: Session, flavor: Flavor, project_id: str) -> Aggregate:
    """The project's private stock aggregate for the flavor, created on first use."""
    name = private_stock_name(flavor, project_id)
    found = session.scalar(select(Aggregate).where(Aggregate.name == name))
    if found is not None:
        return found
    metadata = {
        flavor.name: "true",
        "baremetal": "true",
        "filter_flavor_id": flavor.id,
        "filter_tenant_id": project_id,
    }
    try:
        with session.begin_nested():  # another approval may create it at the same moment
            aggregate = Aggregate(uuid=str(uuid.uuid4()), name=name, metadata_=metadata)
            session.add(aggregate)
            session.flush()
        return aggregate
    except IntegrityError:
        found = session.scalar(select(Aggregate).where(Aggregate.name == name))
        if found is None:
            raise
        return found


def available_hosts(session: Session, aggregate_id: int) -> list[str]:
    """Members of the aggregate that can be handed out: enabled, nothing allocated on them
    and no live server recorded there, with unreserved inventory (a baremetal node that is
    not `available` has its unit reserved). By name."""
    members = select(AggregateHost.host).where(AggregateHost.aggregate_id == aggregate_id)
    busy_providers = select(Allocation.provider_id).distinct()
    busy_hosts = select(Instance.host).where(Instance.deleted.is_(False), Instance.host.is_not(None))
    with_capacity = (
        select(Inventory.provider_id).where(capacity_sql.capacity(Inventory.__table__) > 0).distinct()
    )
    rows = session.scalars(
        select(ComputeHost.name)
        .where(
            ComputeHost.name.in_(members),
            ComputeHost.disabled.is_(False),
            ComputeHost.provider_id.not_in(busy_providers),
            ComputeHost.provider_id.in_(with_capacity),
            ComputeHost.name.not_in(busy_hosts),
        )
        .order_by(ComputeHost.name)
    )
    return list(rows)


def _still_free(session: Session, host: str) -> bool:
    """Lock the host's resource provider (bumping its generation, as a claim does) and check
    that nothing is allocated there now. A claim in flight holds that row until it commits, so
    this waits for it and then sees its allocation; a claim after this fails its generation
    compare-and-swap and is rescheduled on a snapshot where the host is private stock."""
    provider_id = session.scalar(select(ComputeHost.provider_id).where(ComputeHost.name == host))
    if provider_id is None:
        return False
    session.execute(
        update(ResourceProvider)
        .where(ResourceProvider.id == provider_id)
        .values(generation=ResourceProvider.generation + 1)
        .execution_options(synchronize_session=False)
    )
    used = session.scalar(select(Allocation.id).where(Allocation.provider_id == provider_id).limit(1))
    return used is None


# ---------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class CreateRequest:
    flavor: str
    count: int
    reason: str


def parse_create(body: Any) -> CreateRequest:
    data = params.body_object(body, "stock_request")
    params.reject_unknown(data, {"flavor", "count", "reason"}, "stock_request")
    for key in ("flavor", "count", "reason"):
        if key not in data:
            raise BadRequest(
                f"Invalid input for field/attribute stock_request. '{key}' is a required property"
            )
    flavor, reason = data["flavor"], data["reason"]
    if not isinstance(flavor, str) or not flavor:
        raise BadRequest(f"Invalid input for field/attribute flavor. Value: {flavor!r}.")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 1024:
        raise BadRequest(f"Invalid input for field/attribute reason. Value: {reason!r}.")
    count = params.int_value(data["count"], "count", 1)
    if count > MAX_COUNT:
        raise BadRequest(f"Invalid input for field/attribute count. Value: {count}. Must be <= {MAX_COUNT}")
    return CreateRequest(flavor, count, reason.strip())


def _flavor(session: Session, ctx: RequestContext, ref: str) -> Flavor:
    """A flavor the caller may boot, by id or name (a private flavor not shared with the
    project is as unknown as a missing one)."""
    found = session.get(Flavor, ref) or session.scalar(select(Flavor).where(Flavor.name == ref))
    try:
        return flavors.get_flavor(session, ctx, found.id if found is not None else ref)
    except NotFound:
        raise BadRequest(f"Flavor {ref} could not be found.") from None


def create_request(session: Session, ctx: RequestContext, req: CreateRequest) -> StockRequest:
    ctx.require_writer()
    project_id = ctx.require_project("os_compute_api:os-kumo-stock-requests:create")
    flavor = _flavor(session, ctx, req.flavor)
    row = StockRequest(
        uuid=str(uuid.uuid4()),
        project_id=project_id,
        user_id=ctx.user_id,
        flavor_id=flavor.id,
        count=req.count,
        reason=req.reason,
        status=PENDING,
        hosts=[],
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class ListQuery:
    all_projects: bool = False
    status: str | None = None


def parse_list_query(all_projects: str | None, status: str | None) -> ListQuery:
    if status is not None and status not in STATUSES:
        raise BadRequest(f"Invalid status {status!r}: one of {list(STATUSES)}")
    return ListQuery(
        all_projects=all_projects is not None and all_projects.lower() not in ("0", "false"), status=status
    )


def list_requests(session: Session, ctx: RequestContext, query: ListQuery) -> list[StockRequest]:
    stmt = select(StockRequest).order_by(StockRequest.id)
    if not (query.all_projects and ctx.is_admin):
        project_id = ctx.require_project("os_compute_api:os-kumo-stock-requests:index")
        stmt = stmt.where(StockRequest.project_id == project_id)
    if query.status is not None:
        stmt = stmt.where(StockRequest.status == query.status)
    return list(session.scalars(stmt))


def get_request(session: Session, ctx: RequestContext, request_id: str) -> StockRequest:
    row = session.scalar(select(StockRequest).where(StockRequest.uuid == request_id))
    if row is None or not ctx.owns(row.project_id):
        raise NotFound(f"Stock request {request_id} could not be found.")
    return row


def _decide(session: Session, ctx: RequestContext, request_id: str, status: str, reason: str | None) -> bool:
    """Move the request from pending to `status`; False when it had already left pending."""
    result = session.execute(
        update(StockRequest)
        .where(StockRequest.uuid == request_id, StockRequest.status == PENDING)
        .values(status=status, decided_by=ctx.user_id, decision_reason=reason, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def _already(session: Session, ctx: RequestContext, request_id: str, wanted: str) -> StockRequest:
    row = get_request(session, ctx, request_id)
    session.refresh(row)
    if row.status != wanted:
        raise Conflict(f"Stock request {request_id} is already {row.status}.")
    return row  # the same decision again: idempotent


def approve(session: Session, ctx: RequestContext, request_id: str) -> StockRequest:
    ctx.require_admin()
    get_request(session, ctx, request_id)  # 404 before anything else
    if not _decide(session, ctx, request_id, APPROVED, None):
        return _already(session, ctx, request_id, APPROVED)
    row = get_request(session, ctx, request_id)
    session.refresh(row)
    flavor = session.get(Flavor, row.flavor_id)
    if flavor is None:
        raise Conflict(f"Flavor {row.flavor_id} of stock request {request_id} no longer exists.")
    sources = public_stock(session, flavor.id)
    if not sources:
        raise Conflict(f"There is no public stock for flavor {flavor.name}.")
    target = _private_stock(session, flavor, row.project_id)
    moved: list[str] = []
    for source in sources:
        for host in available_hosts(session, source.id):
            if len(moved) == row.count:
                break
            if not _still_free(session, host):
                continue  # a server was just claimed there
            taken = session.execute(
                delete(AggregateHost)
                .where(AggregateHost.aggregate_id == source.id, AggregateHost.host == host)
                .execution_options(synchronize_session=False)
            )
            if getattr(taken, "rowcount", 0) != 1:
                continue  # another approval took it first
            session.add(AggregateHost(aggregate_id=target.id, host=host))
            moved.append(host)
        source.updated_at = utcnow()
    if len(moved) < row.count:
        raise Conflict(
            f"Only {len(moved)} of {row.count} {flavor.name} machines are available in public stock; "
            "nothing was moved."
        )
    target.updated_at = utcnow()
    row.hosts = moved
    row.aggregate = target.name
    session.flush()
    return row


def reject(session: Session, ctx: RequestContext, request_id: str, reason: str) -> StockRequest:
    ctx.require_admin()
    get_request(session, ctx, request_id)
    if not _decide(session, ctx, request_id, REJECTED, reason):
        return _already(session, ctx, request_id, REJECTED)
    row = get_request(session, ctx, request_id)
    session.refresh(row)
    return row


@dataclass(frozen=True)
class Action:
    name: str
    reason: str | None = None


def parse_action(body: Any) -> Action:
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Malformed request body: exactly one of 'approve' or 'reject' is required")
    name, value = next(iter(body.items()))
    if name == "approve":
        return Action("approve")
    if name == "reject":
        reason = value.get("reason") if isinstance(value, dict) else None
        if not isinstance(reason, str) or not reason.strip():
            raise BadRequest("Invalid input for field/attribute reject. 'reason' is a required property")
        return Action("reject", reason.strip())
    raise BadRequest(f"There is no such action: {name}")
