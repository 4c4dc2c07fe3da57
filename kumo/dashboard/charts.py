"""Server-rendered charts: pure functions from numbers to the geometry an SVG template draws."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kumo.dashboard.exposition import Histogram, Scrape
from kumo.dashboard.pages import Machine

BAR_HEIGHT = 22
GAP = 10
LABEL_WIDTH = 140
BAR_WIDTH = 320


@dataclass
class Bar:
    label: str
    used: int
    total: int
    y: int
    used_width: int  # of BAR_WIDTH
    caption: str = ""  # the figure beside the bar, when not used/total

    @property
    def text(self) -> str:
        return self.caption or f"{self.used}/{self.total}"


@dataclass
class BarChart:
    title: str
    bars: list[Bar]
    width: int = LABEL_WIDTH + BAR_WIDTH + 90
    label_width: int = LABEL_WIDTH
    bar_width: int = BAR_WIDTH
    bar_height: int = BAR_HEIGHT

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * (BAR_HEIGHT + GAP) + GAP


def capacity_by_zone(machines: Iterable[Machine], resource: str = "vcpus") -> dict[str, tuple[int, int]]:
    """(used, total) of a hypervisor resource ("vcpus" or "memory_mb") per availability zone
    ("" for none), by zone name. Baremetal nodes have no such inventory and count nothing."""
    totals: dict[str, tuple[int, int]] = {}
    for m in machines:
        total_of = int(getattr(m, resource))
        if total_of <= 0:
            continue
        used, total = totals.get(m.zone, (0, 0))
        totals[m.zone] = (used + int(getattr(m, f"{resource}_used")), total + total_of)
    return dict(sorted(totals.items()))


def bar_chart(title: str, values: dict[str, tuple[int, int]]) -> BarChart:
    """One horizontal bar per label: the used share of its total filled (never past the bar,
    even when used exceeds total, as overcommit allows)."""
    bars = []
    for i, (label, (used, total)) in enumerate(values.items()):
        share = min(1.0, used / total) if total > 0 else 0.0
        bars.append(
            Bar(label or "(no zone)", used, total, GAP + i * (BAR_HEIGHT + GAP), round(share * BAR_WIDTH))
        )
    return BarChart(title, bars)


def _scaled(title: str, rows: list[tuple[str, float, str]]) -> BarChart:
    """Bars of values against the largest of them (the longest bar is the largest value)."""
    top = max((v for _, v, _ in rows), default=0.0)
    bars = [
        Bar(label, 0, 0, GAP + i * (BAR_HEIGHT + GAP), round(BAR_WIDTH * v / top) if top > 0 else 0, caption)
        for i, (label, v, caption) in enumerate(rows)
    ]
    return BarChart(title, bars)


def steal_chart(steal: dict[str, float]) -> BarChart:
    """CPU steal per host, the hosts losing the most first (ties by name)."""
    rows = sorted(steal.items(), key=lambda kv: (-kv[1], kv[0]))
    return _scaled("CPU steal per host (cores)", [(h, v, f"{v:.2f}") for h, v in rows])


def _seconds(bound: float) -> str:
    return f"{bound:g} s"


def boot_chart(histogram: Histogram) -> BarChart:
    """Boot latency: one bar per bucket of the histogram, its observations' count beside it (no
    bars before the first boot)."""
    title = "Servers by boot latency (create to ACTIVE)"
    if histogram.count == 0:
        return BarChart(title, [])
    rows = []
    for lower, upper, n in histogram.per_bucket():
        label = f"> {_seconds(lower)}" if upper == float("inf") else f"≤ {_seconds(upper)}"
        rows.append((label, float(n), str(n)))
    return _scaled(title, rows)


def operator_charts(machines: list[Machine], scrape: Scrape) -> list[tuple[str, BarChart]]:
    """The operators' chart page, each chart with its element id: capacity per zone (vCPUs, RAM),
    CPU steal per host, boot latency."""
    vcpus = capacity_by_zone(machines)
    memory = capacity_by_zone(machines, "memory_mb")
    return [
        ("vcpu-chart", bar_chart("vCPUs used per availability zone", vcpus)),
        ("memory-chart", bar_chart("RAM used per availability zone (MiB)", memory)),
        ("steal-chart", steal_chart(scrape.steal)),
        ("boot-chart", boot_chart(scrape.boot)),
    ]
