"""What the operator charts read from kumo's Prometheus page (`/metrics`): pure functions from
the exposition text (parsed by prometheus_client's own parser) to numbers. Each API worker
exposes its own registry: a histogram read here is the answering worker's observations."""

from __future__ import annotations

import math
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

STEAL = "kumo_host_steal_cores"
BOOT = "kumo_server_boot_seconds"


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts by upper bound, +Inf last, as Prometheus exposes them."""

    buckets: tuple[tuple[float, float], ...]

    @property
    def count(self) -> int:
        return int(self.buckets[-1][1]) if self.buckets else 0

    def per_bucket(self) -> list[tuple[float, float, int]]:
        """(lower bound, upper bound, observations in it) of each bucket."""
        out, lower, below = [], 0.0, 0.0
        for le, cumulative in self.buckets:
            out.append((lower, le, int(cumulative - below)))
            lower, below = le, cumulative
        return out

    def quantile(self, q: float) -> float | None:
        """As PromQL's histogram_quantile: linear within the bucket holding rank q x count; in
        the +Inf bucket, the largest finite bound (a lower bound of the truth)."""
        if self.count <= 0:
            return None
        rank = q * self.count
        lower, below = 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(le):
                    return lower
                if cumulative == below:
                    return le
                return lower + (le - lower) * (rank - below) / (cumulative - below)
            lower, below = le, cumulative
        return lower


@dataclass(frozen=True)
class Scrape:
    steal: dict[str, float]  # cores stolen per host (hosts losing CPU only)
    boot: Histogram


def parse(text: str) -> Scrape:
    steal: dict[str, float] = {}
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        if family.name not in (STEAL, BOOT):
            continue
        for sample in family.samples:
            if sample.name == STEAL and "host" in sample.labels:
                steal[sample.labels["host"]] = float(sample.value)
            elif sample.name == f"{BOOT}_bucket":
                buckets.append((float(sample.labels["le"]), float(sample.value)))
    return Scrape(dict(sorted(steal.items())), Histogram(tuple(sorted(buckets))))
