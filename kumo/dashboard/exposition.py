"""What the operator charts read, as pure functions: CPU steal per host from kumo's Prometheus
page (`/metrics`, through kumo.promtext), and boot latency from the servers API (each recent
server's `created` to its `OS-SRV-USG:launched_at`), which answers the same whichever API worker
serves it — a worker's /metrics histogram holds only the boots it settled."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kumo import promtext
from kumo.promtext import Histogram

STEAL = "kumo_host_steal_cores"
# The bounds of kumo_server_boot_seconds (kumo.metrics), so both read alike.
BOOT_BOUNDS = (
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1200.0,
    1800.0,
    2700.0,
    3600.0,
)


@dataclass(frozen=True)
class Scrape:
    steal: dict[str, float]  # cores stolen per host (hosts losing CPU only)


def parse(text: str) -> Scrape:
    steal = {s.labels["host"]: float(s.value) for s in promtext.samples(text, [STEAL]) if "host" in s.labels}
    return Scrape(dict(sorted(steal.items())))


def _when(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.removesuffix("Z"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def boot_seconds(servers: Iterable[dict[str, Any]]) -> list[float]:
    """Seconds from create to first launch of each server that has launched."""
    found = []
    for server in servers:
        created, launched = _when(server.get("created")), _when(server.get("OS-SRV-USG:launched_at"))
        if created is not None and launched is not None:
            found.append(max(0.0, (launched - created).total_seconds()))
    return found


def histogram(seconds: Iterable[float], bounds: tuple[float, ...] = BOOT_BOUNDS) -> Histogram:
    """Cumulative buckets of `seconds` as Prometheus would count them (+Inf last)."""
    values = list(seconds)
    edges = (*bounds, float("inf"))
    return Histogram(tuple((le, float(sum(1 for v in values if v <= le))) for le in edges))
