"""Fluent builders for scheduler tests: make_host("h1").vcpus(8).ram(4096).az("az1")."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from kumo.scheduler import GroupSpec, HostState, ScheduleRequest, Snapshot

_provider_ids = itertools.count(1)


class HostBuilder:
    def __init__(self, name: str) -> None:
        self._host = HostState(
            name=name, provider_id=next(_provider_ids), generation=0, availability_zone="nova"
        )

    def _inventory(self, rc: str, total: int, used: int, ratio: float, reserved: int) -> HostBuilder:
        capacity = {**self._host.capacity, rc: int((total - reserved) * ratio)}
        self._host = replace(self._host, capacity=capacity, used={**self._host.used, rc: used})
        return self

    def vcpus(self, total: int, used: int = 0, ratio: float = 1.0, reserved: int = 0) -> HostBuilder:
        return self._inventory("VCPU", total, used, ratio, reserved)

    def ram(self, total: int, used: int = 0, ratio: float = 1.0, reserved: int = 0) -> HostBuilder:
        return self._inventory("MEMORY_MB", total, used, ratio, reserved)

    def disk(self, total: int, used: int = 0, ratio: float = 1.0, reserved: int = 0) -> HostBuilder:
        return self._inventory("DISK_GB", total, used, ratio, reserved)

    def max_unit(self, rc: str, value: int) -> HostBuilder:
        self._host = replace(self._host, max_unit={**self._host.max_unit, rc: value})
        return self

    def az(self, zone: str) -> HostBuilder:
        self._host = replace(self._host, availability_zone=zone)
        return self

    def rack(self, rack: str | None) -> HostBuilder:
        self._host = replace(self._host, rack=rack)
        return self

    def region(self, region: str | None) -> HostBuilder:
        self._host = replace(self._host, region=region)
        return self

    def aggregate(self, metadata: Mapping[str, str]) -> HostBuilder:
        self._host = replace(self._host, aggregates=(*self._host.aggregates, dict(metadata)))
        return self

    def down(self) -> HostBuilder:
        self._host = replace(self._host, up=False)
        return self

    def disabled(self) -> HostBuilder:
        self._host = replace(self._host, enabled=False)
        return self

    def canary_suspect(self) -> HostBuilder:
        self._host = replace(self._host, canary_suspect=True)
        return self

    def build(self) -> HostState:
        return self._host


def make_host(name: str = "h1") -> HostBuilder:
    """A host in AZ "nova", up, enabled, with 8 VCPU, 8192 MB RAM and 100 GB disk free."""
    return HostBuilder(name).vcpus(8).ram(8192).disk(100)


def make_snapshot(
    *hosts: HostBuilder | HostState,
    groups: Mapping[str, Mapping[str, int]] | None = None,
    instances: Mapping[str, str] | None = None,
    private_stock: frozenset[tuple[str, str]] = frozenset(),
) -> Snapshot:
    states = [h.build() if isinstance(h, HostBuilder) else h for h in hosts]
    return replace(Snapshot.of(states, groups, instances), private_stock=private_stock)


def make_request(**overrides: Any) -> ScheduleRequest:
    """A 1 VCPU / 512 MB / 1 GB request from project "p1"; `group=("affinity", {...rules})`."""
    fields: dict[str, Any] = {
        "instance_uuid": "i-new",
        "project_id": "p1",
        "resources": {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1},
    }
    group = overrides.pop("group", None)
    if group is not None:
        policy, rules = group if isinstance(group, tuple) else (group, {})
        fields["group"] = GroupSpec("g1", policy, rules)
    fields.update(overrides)
    return ScheduleRequest(**fields)
