"""Host filters: each answers "may this instance land on this host?" with a reason when not.

A filter is a plain function wrapped with a stable name (the one operators see in "no valid
host" messages). Filters never raise for a rejection and never do I/O: everything they need is
in the request and the snapshot. Reasons are the module-level constants below (ResourcesFilter
appends the resource class).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kumo.scheduler import capacity as capacity_rule
from kumo.scheduler.request import AFFINITY, ANTI_AFFINITY, HOST, ScheduleRequest
from kumo.scheduler.snapshot import HostState, Snapshot

IGNORED = "listed in ignore_hosts"
NOT_FORCED = "not the forced host"
NOT_REQUESTED = "not the requested host"
SERVICE_DOWN = "service down"
SERVICE_DISABLED = "service disabled"
OTHER_AZ = "not in the requested availability zone"
TENANT_ISOLATED = "aggregate reserved for other projects"
EXTRA_SPECS_MISMATCH = "aggregate metadata does not match flavor extra specs"
INSUFFICIENT = "insufficient"  # + resource class: "insufficient MEMORY_MB"
ABOVE_MAX_UNIT = "above max_unit of"  # + resource class
NOT_GROUP_HOST = "not the host of the affinity group"
GROUP_HOST_FULL = "max_server_per_host members of the anti-affinity group already there"
GROUP_DOMAIN_FULL = "max_server_per_host members of the anti-affinity group already in that"  # + domain
NOT_GROUP_DOMAIN = "not in the affinity group's"  # + domain
NO_DOMAIN_LABEL = "host has no failure-domain label"  # + domain
FLAVOR_NOT_ALLOWED = "aggregate reserved for other flavors"
PUBLIC_STOCK_CLOSED = "public stock closed to projects with private stock"
NOT_SAME_HOST = "holds none of the same_host instances"
HOLDS_DIFFERENT_HOST = "holds a different_host instance"

EXTRA_SPECS_SCOPE = "aggregate_instance_extra_specs"
TENANT_KEY_PREFIX = "filter_tenant_id"
FLAVOR_KEY = "filter_flavor_id"
BAREMETAL_KEY = "baremetal"


@dataclass(frozen=True)
class FilterResult:
    ok: bool
    reason: str = ""


PASS = FilterResult(True)
Check = Callable[[HostState, ScheduleRequest, Snapshot], FilterResult]
Applies = Callable[[ScheduleRequest], bool]


@dataclass(frozen=True)
class Filter:
    name: str
    check: Check
    # When given and false for a request, the filter would pass every host: the core skips it
    # (a request without hints or groups then costs two or three checks per host, not ten).
    applies: Applies | None = None

    def __call__(self, host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
        return self.check(host, request, snapshot)

    def applies_to(self, request: ScheduleRequest) -> bool:
        return self.applies is None or self.applies(request)


def host_filter(name: str, applies: Applies | None = None) -> Callable[[Check], Filter]:
    def wrap(check: Check) -> Filter:
        return Filter(name, check, applies)

    return wrap


def _fail(reason: str) -> FilterResult:
    return FilterResult(False, reason)


@host_filter("IgnoreHostsFilter", lambda request: bool(request.ignore_hosts))
def ignore_hosts_filter(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
    return _fail(IGNORED) if host.name in request.ignore_hosts else PASS


@host_filter("ForceHostFilter", lambda request: request.force_host is not None)
def force_host_filter(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
    if request.force_host is None or host.name == request.force_host:
        return PASS
    return _fail(NOT_FORCED)


@host_filter("RequestedHostFilter", lambda request: request.requested_host is not None)
def requested_host_filter(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
    if request.requested_host is None or host.name == request.requested_host:
        return PASS
    return _fail(NOT_REQUESTED)


@host_filter("ComputeFilter")
def compute_filter(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
    if not host.up:
        return _fail(SERVICE_DOWN)
    return PASS if host.enabled else _fail(SERVICE_DISABLED)


@host_filter("ComputeFilter")
def forced_compute_filter(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
    """An admin's forced host must be up; a forced create may land on it while it is disabled
    (an operator tries a disabled host this way, and so do the health canaries that disabled
    it, before enabling it again); a move to a named host may not."""
    if not host.up:
        return _fail(SERVICE_DOWN)
    return PASS if host.enabled or request.force_disabled else _fail(SERVICE_DISABLED)


@host_filter("AvailabilityZoneFilter", lambda request: request.availability_zone is not None)
def availability_zone_filter(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
    if request.availability_zone is None or host.availability_zone == request.availability_zone:
        return PASS
    return _fail(OTHER_AZ)


@host_filter("AggregateMultiTenancyIsolation")
def tenant_isolation_filter(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
    """A host in aggregates carrying filter_tenant_id* keys takes only the projects listed there."""
    if not host.aggregates:
        return PASS
    allowed: set[str] = set()
    for key, values in host.aggregate_metadata().items():
        if key.startswith(TENANT_KEY_PREFIX):
            allowed |= values
    allowed.discard("")
    return PASS if not allowed or request.project_id in allowed else _fail(TENANT_ISOLATED)


def _has_aggregate_specs(request: ScheduleRequest) -> bool:
    """Any extra spec this filter reads: unscoped, or scoped aggregate_instance_extra_specs."""
    return any(
        ":" not in key or key.startswith(EXTRA_SPECS_SCOPE + ":") for key in request.flavor_extra_specs
    )


@host_filter("AggregateInstanceExtraSpecsFilter", _has_aggregate_specs)
def aggregate_extra_specs_filter(
    host: HostState, request: ScheduleRequest, snapshot: Snapshot
) -> FilterResult:
    """Nova semantics: every extra spec that is unscoped (no ':') or scoped
    `aggregate_instance_extra_specs:` must match some value of that key in the host's
    aggregates; specs in any other scope (hw:, quota:, ...) are ignored."""
    if not request.flavor_extra_specs:
        return PASS
    metadata = host.aggregate_metadata()
    for spec_key, requirement in request.flavor_extra_specs.items():
        scope, sep, key = spec_key.partition(":")
        if not sep:
            key = scope
        elif scope != EXTRA_SPECS_SCOPE:
            continue
        if not any(match_extra_spec(value, requirement) for value in metadata.get(key, ())):
            return _fail(EXTRA_SPECS_MISMATCH)
    return PASS


@host_filter("AggregateFlavorFilter")
def aggregate_flavor_filter(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
    """A host in aggregates carrying filter_flavor_id takes only the flavors listed there (by id;
    comma-separated or in several aggregates): how a stock aggregate holds one flavor's machines."""
    if not host.aggregates:
        return PASS
    allowed = host.aggregate_metadata().get(FLAVOR_KEY, set()) - {""}
    return PASS if not allowed or request.flavor_id in allowed else _fail(FLAVOR_NOT_ALLOWED)


@host_filter("StockFilter")
def stock_filter(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
    """A project with private stock of a flavor lands only there with that flavor (when the
    stock_private_exclusive setting filled snapshot.private_stock): public stock, baremetal='true'
    aggregates without filter_tenant_id, is closed to it for that flavor. Private stock is
    guarded by tenant isolation."""
    if not snapshot.private_stock or not host.aggregates:
        return PASS
    mine = {(request.project_id, request.flavor_id or ""), (request.project_id, "*")}
    if not mine & snapshot.private_stock:
        return PASS
    metadata = host.aggregate_metadata()
    if "true" not in {v.lower() for v in metadata.get(BAREMETAL_KEY, ())}:
        return PASS
    own = any(
        request.project_id in values for key, values in metadata.items() if key.startswith(TENANT_KEY_PREFIX)
    )
    return PASS if own else _fail(PUBLIC_STOCK_CLOSED)


_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda v, r: v >= r,  # Nova: "=" means "at least"
    "==": lambda v, r: v == r,
    "!=": lambda v, r: v != r,
    ">=": lambda v, r: v >= r,
    "<=": lambda v, r: v <= r,
}
_STRING_OPS: dict[str, Callable[[str, str], bool]] = {
    "s==": lambda v, r: v == r,
    "s!=": lambda v, r: v != r,
    "s<": lambda v, r: v < r,
    "s<=": lambda v, r: v <= r,
    "s>": lambda v, r: v > r,
    "s>=": lambda v, r: v >= r,
    "<in>": lambda v, r: r in v,
}


def match_extra_spec(value: str, requirement: str) -> bool:
    """nova.scheduler.filters.extra_specs_ops.match: a leading operator word selects the
    comparison ("<or> a <or> b", "<in> sub", "<all-in> a b", "s== x", ">= 4", ...);
    anything else is plain string equality."""
    words = requirement.split()
    op, args = (words[0], words[1:]) if words else ("", [])
    if op == "<or>":
        return value in args[::2]  # "<or> a <or> b": the operands sit at even positions
    if op == "<all-in>":
        return bool(args) and all(arg in value for arg in args)
    if op in _STRING_OPS:
        return bool(args) and _STRING_OPS[op](value, args[0])
    if op in _NUMERIC_OPS:
        try:
            return bool(args) and _NUMERIC_OPS[op](float(value), float(args[0]))
        except ValueError:
            return False
    return value == requirement


@host_filter("ResourcesFilter")
def resources_filter(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
    """Placement's capacity rule per class (kumo.scheduler.capacity): room for the amount, and
    the amount within max_unit."""
    capacity, used = host.capacity, host.used
    for resource_class, amount in request.resources.items():
        if amount <= 0:
            continue
        if not capacity_rule.has_room(capacity.get(resource_class, 0), used.get(resource_class, 0), amount):
            return _fail(f"{INSUFFICIENT} {resource_class}")
        if not capacity_rule.within_units(amount, host.max_unit.get(resource_class, amount)):
            return _fail(f"{ABOVE_MAX_UNIT} {resource_class}")
    return PASS


@host_filter("ServerGroupAffinityFilter", lambda r: r.group is not None and r.group.policy == AFFINITY)
def group_affinity_filter(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
    """Hard affinity: once the group has a member somewhere, only hosts in that failure domain
    (rules["failure_domain"]: host by default, or rack, az, region) qualify."""
    group = request.group
    if group is None or group.policy != AFFINITY:
        return PASS
    domain = group.failure_domain
    if domain == HOST:
        members = snapshot.group_hosts.get(group.uuid, {})
        if not any(members.values()) or members.get(host.name, 0) > 0:
            return PASS
        return _fail(NOT_GROUP_HOST)
    value = host.failure_domain(domain)
    if value is None:
        return _fail(f"{NO_DOMAIN_LABEL} {domain}")
    occupied = snapshot.group_domains(group.uuid, domain)
    return PASS if not occupied or value in occupied else _fail(f"{NOT_GROUP_DOMAIN} {domain}")


@host_filter(
    "ServerGroupAntiAffinityFilter", lambda r: r.group is not None and r.group.policy == ANTI_AFFINITY
)
def group_anti_affinity_filter(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
    """Hard anti-affinity: fewer than rules["max_server_per_host"] (default 1) members in the
    host's failure domain (rules["failure_domain"]: host by default, or rack, az, region). A
    host without that label cannot prove the spread and is refused."""
    group = request.group
    if group is None or group.policy != ANTI_AFFINITY:
        return PASS
    domain = group.failure_domain
    value = host.failure_domain(domain)
    if value is None:
        return _fail(f"{NO_DOMAIN_LABEL} {domain}")
    if snapshot.group_members_in(group.uuid, domain, value) < group.max_server_per_host:
        return PASS
    return _fail(GROUP_HOST_FULL if domain == HOST else f"{GROUP_DOMAIN_FULL} {domain}")


@host_filter("SameHostFilter", lambda request: bool(request.same_host))
def same_host_filter(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
    if not request.same_host:
        return PASS
    if any(snapshot.instance_hosts.get(uuid) == host.name for uuid in request.same_host):
        return PASS
    return _fail(NOT_SAME_HOST)


@host_filter("DifferentHostFilter", lambda request: bool(request.different_host))
def different_host_filter(host: HostState, request: ScheduleRequest, snapshot: Snapshot) -> FilterResult:
    if any(snapshot.instance_hosts.get(uuid) == host.name for uuid in request.different_host):
        return _fail(HOLDS_DIFFERENT_HOST)
    return PASS


# Cheapest and most decisive first; each host is charged to the first filter that rejects it.
DEFAULT_FILTERS: tuple[Filter, ...] = (
    requested_host_filter,
    ignore_hosts_filter,
    compute_filter,
    availability_zone_filter,
    tenant_isolation_filter,
    aggregate_flavor_filter,
    stock_filter,
    aggregate_extra_specs_filter,
    resources_filter,
    group_affinity_filter,
    group_anti_affinity_filter,
    same_host_filter,
    different_host_filter,
)
# An admin's forced host bypasses placement policy (a create's, a disabled service too), never
# liveness or capacity.
FORCED_HOST_FILTERS: tuple[Filter, ...] = (force_host_filter, forced_compute_filter, resources_filter)
