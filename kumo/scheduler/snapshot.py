"""An immutable picture of the fleet that one scheduling cycle reads.

Loaded once (kumo.compute.fleet_snapshot.load_snapshot) and never mutated: `Snapshot.after_claim`
returns a new snapshot that mirrors exactly what `kumo.placement.claims.claim` writes (usage up by
the request, provider generation up by one), so a batch of instances can be scheduled, and claimed
in order in one transaction, against a single read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from kumo.scheduler.request import AZ, HOST, RACK, REGION, ScheduleRequest


@dataclass(frozen=True)
class HostState:
    name: str
    provider_id: int
    generation: int  # the resource provider's, as read; the claim's compare-and-swap token
    availability_zone: str | None = None
    up: bool = True
    enabled: bool = True
    capacity: Mapping[str, int] = field(default_factory=dict)  # int((total - reserved) * ratio)
    used: Mapping[str, int] = field(default_factory=dict)
    max_unit: Mapping[str, int] = field(default_factory=dict)  # largest single allocation
    aggregates: tuple[Mapping[str, str], ...] = ()  # metadata of each aggregate holding the host
    rack: str | None = None  # failure-domain labels (ComputeHost.rack / .region)
    region: str | None = None
    canary_suspect: bool = False  # its health canaries failed in a row (kumo/canary/policy.py)

    def failure_domain(self, domain: str) -> str | None:
        """This host's value of a failure domain (host, rack, az, region); None when unlabelled."""
        if domain == HOST:
            return self.name
        if domain == RACK:
            return self.rack
        if domain == AZ:
            return self.availability_zone
        if domain == REGION:
            return self.region
        raise ValueError(f"unknown failure domain {domain!r}")

    def free(self, resource_class: str) -> int:
        return self.capacity.get(resource_class, 0) - self.used.get(resource_class, 0)

    def aggregate_metadata(self) -> dict[str, set[str]]:
        """Nova's merged view: key -> every value of that key across the host's aggregates,
        comma-separated values split (nova.scheduler.filters.utils.aggregate_metadata_get_by_host).
        Computed once per host state (filters ask for it for every request); do not mutate."""
        return self._merged_metadata

    @cached_property
    def _merged_metadata(self) -> dict[str, set[str]]:
        merged: dict[str, set[str]] = {}
        for metadata in self.aggregates:
            for key, value in metadata.items():
                merged.setdefault(key, set()).update(v.strip() for v in str(value).split(","))
        return merged

    def with_claim(self, resources: Mapping[str, int]) -> HostState:
        used = dict(self.used)
        for resource_class, amount in resources.items():
            used[resource_class] = used.get(resource_class, 0) + amount
        return replace(self, used=used, generation=self.generation + 1)


class HostMap(Mapping[str, HostState]):
    """Host name -> state: a base mapping read once, plus the states changed since by claims.
    `with_host` shares the base, so a claim costs O(changed hosts), not O(fleet)."""

    __slots__ = ("_base", "_changed")

    def __init__(self, base: Mapping[str, HostState], changed: Mapping[str, HostState] | None = None) -> None:
        self._base = base
        self._changed: Mapping[str, HostState] = changed or {}

    def __getitem__(self, name: str) -> HostState:
        changed = self._changed.get(name)
        return changed if changed is not None else self._base[name]

    def __contains__(self, name: object) -> bool:
        return name in self._base

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)

    def values(self) -> Iterator[HostState]:  # type: ignore[override]
        if not self._changed:
            return iter(self._base.values())
        changed = self._changed
        return (changed.get(name, state) for name, state in self._base.items())

    def with_host(self, state: HostState) -> HostMap:
        if state.name not in self._base:
            raise KeyError(state.name)
        return HostMap(self._base, {**self._changed, state.name: state})


@dataclass(frozen=True)
class Snapshot:
    hosts: Mapping[str, HostState]  # by host name
    # server group uuid -> host name -> number of the group's instances on that host
    group_hosts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # instance uuid -> host, only for the instances a request's same_host/different_host names
    instance_hosts: Mapping[str, str] = field(default_factory=dict)
    # (project, flavor id or "*") with private stock: with the stock_private_exclusive setting,
    # that project's servers of that flavor land there only (kumo.stock, StockFilter).
    private_stock: frozenset[tuple[str, str]] = frozenset()
    # Derived counts only (never passed on by replace(): init=False starts each snapshot empty).
    _cache: dict[tuple[str, str], dict[str | None, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def of(
        cls,
        hosts: Iterable[HostState],
        group_hosts: Mapping[str, Mapping[str, int]] | None = None,
        instance_hosts: Mapping[str, str] | None = None,
    ) -> Snapshot:
        return cls(HostMap({h.name: h for h in hosts}), dict(group_hosts or {}), dict(instance_hosts or {}))

    def group_members_on(self, group_uuid: str, host: str) -> int:
        return self.group_hosts.get(group_uuid, {}).get(host, 0)

    def group_members_in(self, group_uuid: str, domain: str, value: str | None) -> int:
        """Members of the group on hosts whose `domain` is `value` (hosts gone from the snapshot
        count nowhere). Unlabelled hosts (value None) share one domain."""
        if domain == HOST:
            return self.group_members_on(group_uuid, value or "")
        return self._domain_counts(group_uuid, domain).get(value, 0)

    def group_domains(self, group_uuid: str, domain: str) -> set[str | None]:
        """The `domain` values holding at least one member of the group."""
        return {value for value, count in self._domain_counts(group_uuid, domain).items() if count > 0}

    def _domain_counts(self, group_uuid: str, domain: str) -> dict[str | None, int]:
        # Filters ask once per host; count the group's members per domain once per snapshot.
        key = (group_uuid, domain)
        counts = self._cache.get(key)
        if counts is None:
            counts = {}
            for host_name, count in self.group_hosts.get(group_uuid, {}).items():
                host = self.hosts.get(host_name)
                if host is not None:
                    value = host.failure_domain(domain)
                    counts[value] = counts.get(value, 0) + count
            self._cache[key] = counts
        return counts

    def with_group_hosts(self, group_uuid: str, hosts: Mapping[str, int]) -> Snapshot:
        """The snapshot with one group's member counts replaced (re-read at claim time)."""
        return replace(self, group_hosts={**self.group_hosts, group_uuid: dict(hosts)})

    def with_instance_hosts(self, instance_hosts: Mapping[str, str]) -> Snapshot:
        return replace(self, instance_hosts={**self.instance_hosts, **instance_hosts})

    def after_claim(self, host: str, request: ScheduleRequest) -> Snapshot:
        """The snapshot as it will be once `request` is claimed on `host`."""
        claimed = self.hosts[host].with_claim(request.resources)
        base = self.hosts if isinstance(self.hosts, HostMap) else HostMap(self.hosts)
        hosts = base.with_host(claimed)
        group_hosts = dict(self.group_hosts)
        if request.group is not None:
            members = dict(group_hosts.get(request.group.uuid, {}))
            members[host] = members.get(host, 0) + 1
            group_hosts[request.group.uuid] = members
        instance_hosts = {**self.instance_hosts, request.instance_uuid: host}
        return replace(self, hosts=hosts, group_hosts=group_hosts, instance_hosts=instance_hosts)
