"""The canaries' pure rules: a host's verdict from its recent results, what that verdict does to
the host's service, and which canaries are due. No I/O; tested as tables.

A host's history is its canary results, oldest first (True: passed). Its verdict:

- healthy: its last result passed (or it has none): nothing to do, and a host the canaries
  disabled is enabled again;
- suspect: its last `suspect_after` results failed (a failure and its failed retry): the
  scheduler down-weights it (CanaryWeigher), it still takes servers;
- failing: its last `disable_after` results failed: its service is disabled with reason
  `canary`. Only the canaries' own disabling is ever undone by them: a host an operator
  disabled stays disabled whatever its canaries say.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kumo.config import Settings

CANARY_REASON = "canary"
AZ = "az"
HOST = "host"
MIGRATION = "migration"  # a zone's live-migration canary
SCOPES = (AZ, HOST, MIGRATION)


class Verdict(StrEnum):
    HEALTHY = "healthy"
    SUSPECT = "suspect"
    FAILING = "failing"


@dataclass(frozen=True)
class CanaryPolicy:
    suspect_after: int = 2  # consecutive failures: down-weighted
    disable_after: int = 3  # consecutive failures: disabled with reason "canary"
    az_interval: float = 300.0  # seconds between one zone's canaries
    host_interval: float = 86400.0  # seconds between one host's canaries
    retry_interval: float = 60.0  # seconds before a suspect or canary-disabled host is tried again
    migration_interval: float = 3600.0  # seconds between one zone's live-migration canaries

    def __post_init__(self) -> None:
        if not 1 <= self.suspect_after <= self.disable_after:
            raise ValueError("canary thresholds: 1 <= suspect_after <= disable_after")


def policy_from(settings: Settings) -> CanaryPolicy:
    """The policy the settings (KUMO_CANARY_*) describe."""
    return CanaryPolicy(
        suspect_after=settings.canary_suspect_after,
        disable_after=max(settings.canary_disable_after, settings.canary_suspect_after),
        az_interval=settings.canary_az_interval,
        host_interval=settings.canary_host_interval,
        retry_interval=settings.canary_retry_interval,
        migration_interval=settings.canary_migration_interval,
    )


def consecutive_failures(history: Sequence[bool]) -> int:
    """How many of the last results failed in a row."""
    count = 0
    for ok in reversed(history):
        if ok:
            break
        count += 1
    return count


def verdict(history: Sequence[bool], policy: CanaryPolicy) -> Verdict:
    failures = consecutive_failures(history)
    if failures >= policy.disable_after:
        return Verdict.FAILING
    if failures >= policy.suspect_after:
        return Verdict.SUSPECT
    return Verdict.HEALTHY


@dataclass(frozen=True)
class HostChange:
    """What a verdict does to a host: its scheduler penalty, and whether its service is to be
    disabled (reason `canary`) or enabled."""

    suspect: bool
    disable: bool = False
    enable: bool = False


def host_change(found: Verdict, disabled: bool, disabled_reason: str | None) -> HostChange:
    ours = disabled and disabled_reason == CANARY_REASON
    if found == Verdict.FAILING:
        return HostChange(suspect=True, disable=not disabled)
    if found == Verdict.SUSPECT:
        return HostChange(suspect=True)
    return HostChange(suspect=False, enable=ours)


@dataclass(frozen=True)
class HostSeen:
    """A compute host as the canary loop sees it (os-services, os-kumo-canaries)."""

    name: str
    zone: str
    up: bool
    failures: int = 0  # its last canaries that failed in a row (any scope)
    disabled_by_canary: bool = False
    disabled_by_operator: bool = False  # disabled with another reason (or none): never canaried


@dataclass(frozen=True)
class Target:
    scope: str  # AZ or HOST
    name: str  # the zone or the host
    why: str


def due(
    now: dt.datetime,
    zones: Iterable[str],
    hosts: Iterable[HostSeen],
    last_run: Mapping[tuple[str, str], dt.datetime],
    was_up: Mapping[str, bool],
    policy: CanaryPolicy,
    migration_zones: Iterable[str] = (),
) -> list[Target]:
    """The canaries to run now: each zone every `az_interval`; each host that is up every
    `host_interval`, at once when it joined (never seen, never canaried) or came back (was
    down), and every `retry_interval` while its last canary (of any scope) failed or the
    canaries disabled it (a failure's retry; a mended host enabled again). Never a host an
    operator disabled (for maintenance, or any reason but `canary`): a host canary is forced
    onto its host. `last_run`: (scope, name) → when its last canary finished; `was_up`: each
    host's liveness at the previous pass (absent: not seen before). Each of `migration_zones`
    (those with two usable hypervisors) gets a live-migration canary every
    `migration_interval`."""
    found: list[Target] = []

    def age(key: tuple[str, str]) -> float | None:
        at = last_run.get(key)
        return None if at is None else (now - at).total_seconds()

    for zone in sorted(set(zones)):
        seconds = age((AZ, zone))
        if seconds is None or seconds >= policy.az_interval:
            found.append(Target(AZ, zone, "first" if seconds is None else "interval"))
    for zone in sorted(set(migration_zones)):
        seconds = age((MIGRATION, zone))
        if seconds is None or seconds >= policy.migration_interval:
            found.append(Target(MIGRATION, zone, "first" if seconds is None else "interval"))
    for host in sorted(hosts, key=lambda h: h.name):
        if not host.up or host.disabled_by_operator:
            continue
        seconds = age((HOST, host.name))
        if host.name not in was_up and seconds is None:
            why = "joined"
        elif not was_up.get(host.name, True):
            why = "came back"
        elif host.failures or host.disabled_by_canary:
            why = "retry" if seconds is None or seconds >= policy.retry_interval else ""
        else:
            why = "interval" if seconds is None or seconds >= policy.host_interval else ""
        if why:
            found.append(Target(HOST, host.name, why))
    return found
