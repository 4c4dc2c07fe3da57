"""The pure parts of os-simple-tenant-usage: the hours a server ran in a period (Nova's
_hours_for), the period's parsing, and the per-project sums."""

from __future__ import annotations

import datetime as dt

import pytest

from kumo.compute.usage import ServerUsage, hours_for, parse_period, parse_time, summarize
from kumo.errors import BadRequest

START = dt.datetime(2026, 1, 1)
STOP = dt.datetime(2026, 1, 2)  # a 24-hour period


def at(hours: float) -> dt.datetime:
    return START + dt.timedelta(hours=hours)


@pytest.mark.parametrize(
    ("launched", "terminated", "hours"),
    [
        (None, None, 0.0),  # never launched: no charge
        (at(-5), None, 24.0),  # running through the whole period
        (at(2), None, 22.0),  # launched inside, still running: up to the period's stop
        (at(2), at(5), 3.0),  # launched and terminated inside
        (at(-5), at(1.5), 1.5),  # terminated inside
        (at(-5), at(-1), 0.0),  # terminated before the period
        (at(25), None, 0.0),  # launched after it
        (at(-5), at(30), 24.0),  # terminated after it
    ],
)
def test_hours_for(launched: dt.datetime | None, terminated: dt.datetime | None, hours: float) -> None:
    assert hours_for(launched, terminated, START, STOP) == pytest.approx(hours)


def test_parse_time_takes_novas_three_formats() -> None:
    now = dt.datetime(2026, 5, 5)
    assert parse_time("2026-01-02T03:04:05", now) == dt.datetime(2026, 1, 2, 3, 4, 5)
    assert parse_time("2026-01-02T03:04:05.250000", now) == dt.datetime(2026, 1, 2, 3, 4, 5, 250000)
    assert parse_time("2026-01-02 03:04:05.5", now) == dt.datetime(2026, 1, 2, 3, 4, 5, 500000)
    assert parse_time(None, now) == now and parse_time("", now) == now
    for bad in ("2026-01-02", "yesterday", "2026-13-02T00:00:00", "2026-01-02T03:04:05Z"):
        with pytest.raises(BadRequest):
            parse_time(bad, now)


def test_a_period_must_end_after_it_starts() -> None:
    assert parse_period("2026-01-01T00:00:00", "2026-01-02T00:00:00") == (START, STOP)
    for start, end in (("2026-01-02T00:00:00", "2026-01-01T00:00:00"), ("2026-01-01T00:00:00",) * 2):
        with pytest.raises(BadRequest, match="start time cannot occur after the end time"):
            parse_period(start, end)


def usage(project: str, hours: float, vcpus: int = 2, ram: int = 512, disk: int = 10) -> ServerUsage:
    return ServerUsage(
        instance_id=f"{project}-{hours}",
        name="vm",
        tenant_id=project,
        flavor="small",
        hours=hours,
        memory_mb=ram,
        local_gb=disk,
        vcpus=vcpus,
        started_at=START,
        ended_at=None,
        state="active",
        uptime=0,
    )


def test_summarize_sums_per_project_in_order_of_appearance() -> None:
    tenants = summarize([usage("a", 2.0), usage("a", 1.0, vcpus=4), usage("b", 0.5, ram=1024)], START, STOP)
    assert [t.tenant_id for t in tenants] == ["a", "b"]
    a, b = tenants
    assert (a.total_hours, a.total_vcpus_usage, a.total_memory_mb_usage, a.total_local_gb_usage) == (
        3.0,
        2 * 2.0 + 4 * 1.0,
        512 * 3.0,
        10 * 3.0,
    )
    assert b.total_memory_mb_usage == 512.0 and len(b.servers) == 1
    assert (a.start, a.stop) == (START, STOP)
