"""The canaries' pure policy (kumo/canary/policy.py) as tables: result history → verdict →
what happens to the host's service; which canaries are due; the boot line a canary reads."""

from __future__ import annotations

import datetime as dt

import pytest

from kumo.canary.policy import (
    AZ,
    CANARY_REASON,
    HOST,
    MIGRATION,
    CanaryPolicy,
    HostChange,
    HostSeen,
    Target,
    Verdict,
    consecutive_failures,
    due,
    host_change,
    verdict,
)
from kumo.canary.probe import BootLine, check_boot_line, parse_boot_line

POLICY = CanaryPolicy(
    suspect_after=2, disable_after=3, az_interval=300, host_interval=86400, retry_interval=60
)
F, P = False, True


@pytest.mark.parametrize(
    ("history", "failures", "expected"),
    [
        ([], 0, Verdict.HEALTHY),
        ([P], 0, Verdict.HEALTHY),
        ([F], 1, Verdict.HEALTHY),  # one failure: retried before anything happens
        ([P, F, F], 2, Verdict.SUSPECT),  # a failure and its failed retry: down-weighted
        ([F, F, F], 3, Verdict.FAILING),  # disabled
        ([F, F, F, F, F], 5, Verdict.FAILING),
        ([F, F, F, P], 0, Verdict.HEALTHY),  # one pass clears it
        ([F, P, F], 1, Verdict.HEALTHY),  # failures must be in a row
    ],
)
def test_history_to_verdict(history: list[bool], failures: int, expected: Verdict) -> None:
    assert consecutive_failures(history) == failures
    assert verdict(history, POLICY) == expected


@pytest.mark.parametrize(
    ("found", "disabled", "reason", "change"),
    [
        (Verdict.HEALTHY, False, None, HostChange(suspect=False)),
        (Verdict.SUSPECT, False, None, HostChange(suspect=True)),
        (Verdict.FAILING, False, None, HostChange(suspect=True, disable=True)),
        (Verdict.FAILING, True, CANARY_REASON, HostChange(suspect=True)),  # already off
        (Verdict.FAILING, True, "maintenance", HostChange(suspect=True)),  # the operator's stays
        (Verdict.HEALTHY, True, CANARY_REASON, HostChange(suspect=False, enable=True)),  # mended
        (Verdict.HEALTHY, True, "maintenance", HostChange(suspect=False)),  # never the operator's
        (Verdict.SUSPECT, True, CANARY_REASON, HostChange(suspect=True)),  # not yet
    ],
)
def test_verdict_to_host_change(
    found: Verdict, disabled: bool, reason: str | None, change: HostChange
) -> None:
    assert host_change(found, disabled, reason) == change


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        CanaryPolicy(suspect_after=3, disable_after=2)


NOW = dt.datetime(2026, 12, 7, 12, 0, 0)


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("host", "last", "was_up", "why"),
    [
        (HostSeen("h", "az1", up=True), None, None, "joined"),
        (HostSeen("h", "az1", up=True), ago(10), None, ""),  # canaried before this loop started
        (HostSeen("h", "az1", up=True), ago(90000), None, "interval"),
        (HostSeen("h", "az1", up=True), ago(10), False, "came back"),
        (HostSeen("h", "az1", up=True), ago(10), True, ""),
        (HostSeen("h", "az1", up=True), ago(90000), True, "interval"),
        (HostSeen("h", "az1", up=True, failures=1), ago(10), True, ""),  # retried after retry_interval
        (HostSeen("h", "az1", up=True, failures=1), ago(61), True, "retry"),
        (HostSeen("h", "az1", up=True, disabled_by_canary=True), ago(61), True, "retry"),
        (HostSeen("h", "az1", up=False), None, None, ""),  # a down host gets none
        # An operator's maintenance host (disabled, reason not "canary") is never canaried.
        (HostSeen("h", "az1", up=True, disabled_by_operator=True), None, None, ""),
        (HostSeen("h", "az1", up=True, disabled_by_operator=True), ago(90000), True, ""),
        (HostSeen("h", "az1", up=True, failures=2, disabled_by_operator=True), ago(61), True, ""),
        (HostSeen("h", "az1", up=True, disabled_by_operator=True), ago(10), False, ""),
    ],
)
def test_which_host_canaries_are_due(
    host: HostSeen, last: dt.datetime | None, was_up: bool | None, why: str
) -> None:
    last_run = {(HOST, "h"): last} if last else {}
    seen = {"h": was_up} if was_up is not None else {}
    targets = due(NOW, [], [host], last_run, seen, POLICY)
    assert targets == ([Target(HOST, "h", why)] if why else [])


def test_each_zone_every_az_interval_and_its_live_migration_hourly() -> None:
    last_run = {(AZ, "az1"): ago(299), (AZ, "az2"): ago(300), (MIGRATION, "az1"): ago(3599)}
    assert due(NOW, ["az1", "az2", "az3"], [], last_run, {}, POLICY, migration_zones=["az1", "az2"]) == [
        Target(AZ, "az2", "interval"),
        Target(AZ, "az3", "first"),
        Target(MIGRATION, "az2", "first"),
    ]


@pytest.mark.parametrize(
    ("console", "line"),
    [
        ("", None),
        ("KUMO-BOOT-OK vm vcpus=1 mem_kb=1000", None),  # half-written: no newline yet
        (
            "booting\nKUMO-BOOT-OK vm vcpus=2 mem_kb=100000 disk_bytes=1 boots=1 ip=none ssh=up\n",
            BootLine(2, 100000, None, "up"),
        ),
        ("KUMO-BOOT-OK vm vcpus=1 mem_kb=5 boots=1 ip=10.0.0.5 ssh=off\n", BootLine(1, 5, "10.0.0.5", "off")),
        ("KUMO-BOOT-OK vm vcpus=1 mem_kb=5 ip=10.0.0.5\n", BootLine(1, 5, "10.0.0.5")),  # an older image
    ],
)
def test_the_boot_line_read_from_a_console(console: str, line: BootLine | None) -> None:
    assert parse_boot_line(console) == line


@pytest.mark.parametrize(
    ("line", "wrong"),
    [
        (BootLine(1, 110000, None), None),  # MemTotal is below the flavor's RAM
        (BootLine(2, 110000, None), "the guest has 2 vCPUs, the flavor 1"),
        (BootLine(1, 140000, None), "the guest has 140000 kB of memory, the flavor 131072 kB"),
        (BootLine(1, 1000, None), "the guest has 1000 kB of memory, the flavor 131072 kB"),
    ],
)
def test_the_boot_line_must_match_the_flavor(line: BootLine, wrong: str | None) -> None:
    assert check_boot_line(line, vcpus=1, ram_mb=128) == wrong
