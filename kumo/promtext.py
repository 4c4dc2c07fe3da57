"""Prometheus exposition text, read: histograms (cumulative buckets, PromQL's quantile) and the
samples of chosen families, parsed by prometheus_client's own parser. Pure: text in, numbers
out. Used by the dashboard's charts (kumo.dashboard) and the benchmarks (kumo.density)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts by upper bound (+Inf last), as Prometheus exposes them."""

    buckets: tuple[tuple[float, float], ...]

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    @property
    def top_bound(self) -> float | None:
        """The largest finite bucket bound."""
        finite = [le for le, _ in self.buckets if not math.isinf(le)]
        return max(finite) if finite else None

    def __sub__(self, earlier: Histogram) -> Histogram:
        if not earlier.buckets:
            return self
        before = dict(earlier.buckets)
        return Histogram(tuple((le, n - before.get(le, 0.0)) for le, n in self.buckets))

    def __add__(self, other: Histogram) -> Histogram:
        if not other.buckets:
            return self
        if not self.buckets:
            return other
        theirs = dict(other.buckets)
        return Histogram(tuple((le, n + theirs.get(le, 0.0)) for le, n in self.buckets))

    def per_bucket(self) -> list[tuple[float, float, int]]:
        """(lower bound, upper bound, observations in it) of each bucket."""
        out, lower, below = [], 0.0, 0.0
        for le, cumulative in self.buckets:
            out.append((lower, le, int(cumulative - below)))
            lower, below = le, cumulative
        return out

    def quantile(self, q: float) -> float | None:
        """As PromQL's histogram_quantile: linear within the bucket holding rank q·count. In the
        +Inf bucket the answer is the largest finite bound (a lower bound of the truth)."""
        total = self.count
        if total <= 0:
            return None
        rank = q * total
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

    def share_at_most(self, bound: float) -> float | None:
        """Exact fraction of observations <= bound when bound is a bucket edge."""
        if self.count <= 0:
            return None
        for le, cumulative in self.buckets:
            if le >= bound:
                return cumulative / self.count
        return 1.0


def samples(text: str, names: Iterable[str]) -> Iterator[Sample]:
    """The samples of the families `names` (a histogram's _bucket/_count/_sum included). Lines
    of other families are dropped before parsing: a large fleet's page holds a gauge per host."""
    wanted = tuple(names)
    series = {f"{n}{suffix}" for n in wanted for suffix in ("", "_bucket", "_count", "_sum")}
    kept = [line for line in text.splitlines() if _of(line, wanted)]
    for family in text_string_to_metric_families("\n".join(kept) + "\n"):
        yield from (s for s in family.samples if s.name in series)


def _of(line: str, names: tuple[str, ...]) -> bool:
    if line.startswith("#"):
        parts = line.split(maxsplit=3)
        return len(parts) > 2 and parts[2] in names
    return line.startswith(names)  # a longer family sharing the prefix is filtered after parsing


def histograms(text: str, names: Iterable[str], **labels: str) -> dict[str, Histogram]:
    """The histograms `names`, each summed over its series whose labels include `labels`."""
    wanted = list(names)
    found: dict[str, dict[float, float]] = {n: {} for n in wanted}
    for sample in samples(text, wanted):
        if not sample.name.endswith("_bucket"):
            continue
        if any(sample.labels.get(k) != v for k, v in labels.items()):
            continue
        by_le = found[sample.name.removesuffix("_bucket")]
        le = float(sample.labels["le"])
        by_le[le] = by_le.get(le, 0.0) + float(sample.value)
    return {n: Histogram(tuple(sorted(b.items()))) for n, b in found.items()}


def value(text: str, name: str) -> float | None:
    """The first sample of `name` (a gauge, or a counter's `_total`), None when absent."""
    return next((float(s.value) for s in samples(text, [name]) if s.name == name), None)


def total(text: str, name: str, **labels: str) -> float:
    """The sum of every series of `name` whose labels include `labels` (0 when none)."""
    return sum(
        float(s.value)
        for s in samples(text, [name])
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )
