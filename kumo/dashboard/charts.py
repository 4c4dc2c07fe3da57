"""Server-rendered charts: pure functions from numbers to the geometry an SVG template draws."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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

    @property
    def text(self) -> str:
        return f"{self.used}/{self.total}"


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


def capacity_by_zone(machines: Iterable[Machine]) -> dict[str, tuple[int, int]]:
    """vCPUs (used, total) of the hypervisors per availability zone ("" for none), by zone name.
    Baremetal nodes have no vCPU inventory and count nothing."""
    totals: dict[str, tuple[int, int]] = {}
    for m in machines:
        if m.vcpus <= 0:
            continue
        used, total = totals.get(m.zone, (0, 0))
        totals[m.zone] = (used + m.vcpus_used, total + m.vcpus)
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
