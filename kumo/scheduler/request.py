"""What one instance asks of the scheduler: resources, placement constraints and hints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

AFFINITY = "affinity"
ANTI_AFFINITY = "anti-affinity"
SOFT_AFFINITY = "soft-affinity"
SOFT_ANTI_AFFINITY = "soft-anti-affinity"
POLICIES = frozenset({AFFINITY, ANTI_AFFINITY, SOFT_AFFINITY, SOFT_ANTI_AFFINITY})
SOFT_POLICIES = frozenset({SOFT_AFFINITY, SOFT_ANTI_AFFINITY})

# Failure domains a group's policy applies over (rules["failure_domain"], a kumo extension).
HOST = "host"
RACK = "rack"
AZ = "az"
REGION = "region"
FAILURE_DOMAINS = (HOST, RACK, AZ, REGION)


@dataclass(frozen=True)
class GroupSpec:
    """The server group the instance joins (Nova's instance_group on the request spec)."""

    uuid: str
    policy: str
    rules: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown server group policy {self.policy!r}")

    @property
    def max_server_per_host(self) -> int:
        """Anti-affinity rule: members allowed on one host (Nova's default is 1)."""
        return int(self.rules.get("max_server_per_host", 1))

    @property
    def failure_domain(self) -> str:
        """What the policy spreads over (or packs into): host (Nova's), rack, az or region."""
        domain = str(self.rules.get("failure_domain", HOST))
        return domain if domain in FAILURE_DOMAINS else HOST


@dataclass(frozen=True)
class ScheduleRequest:
    instance_uuid: str
    project_id: str
    resources: Mapping[str, int]  # e.g. {"VCPU": 2, "MEMORY_MB": 512, "DISK_GB": 1}
    flavor_id: str | None = None  # for aggregates with filter_flavor_id (stock)
    flavor_extra_specs: Mapping[str, str] = field(default_factory=dict)
    availability_zone: str | None = None
    group: GroupSpec | None = None
    same_host: tuple[str, ...] = ()  # instance uuids (scheduler hint)
    different_host: tuple[str, ...] = ()  # instance uuids (scheduler hint)
    ignore_hosts: tuple[str, ...] = ()
    force_host: str | None = None  # admin "az:host": skips policy filters, never capacity
    requested_host: str | None = None  # admin's 2.74 `host`: only that host, every filter runs
    # A create forced onto its host may land there while the host's service is disabled (an
    # operator's or the health canaries' try of a disabled host); a move's named host may not.
    force_disabled: bool = False

    @property
    def hinted_instances(self) -> frozenset[str]:
        """Instance uuids whose hosts the snapshot must know (see Snapshot.instance_hosts)."""
        return frozenset(self.same_host) | frozenset(self.different_host)
