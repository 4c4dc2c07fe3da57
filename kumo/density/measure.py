"""What the benchmarks read off the system: process CPU and memory from /proc, Prometheus
histograms from a /metrics page, percentiles. Linux only (/proc)."""

from __future__ import annotations

import math
import os
import platform
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------- processes


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn's workers are children of its master)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if not Path(f"/proc/{current}").exists():
            continue
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(p) for p in task.read_text().split()]
            except OSError:
                continue
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time of the processes (threads included), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / _TICKS


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except OSError:
        return 0


def postgres_pids(database: str | None = None) -> list[int]:
    """PostgreSQL server processes visible here; with `database`, only the backends serving
    it (their title names it), so other users of a shared server are not charged."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() != "postgres":
                    continue
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if database is None or f" {database} " in title:
                pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU seconds a set of processes used between start() and stop()."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self._cpu = 0.0

    def start(self) -> CpuMeter:
        self._cpu = cpu_seconds(self.pids)
        return self

    def stop(self) -> float:
        return cpu_seconds(self.pids) - self._cpu


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem_kb = 0
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


# ---------------------------------------------------------------------------- percentiles


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of raw samples."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# ---------------------------------------------------------------------------- Prometheus histograms


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


_BUCKET = re.compile(r'^(?P<name>[a-zA-Z_:][\w:]*)_bucket\{(?:[^}]*,)?le="(?P<le>[^"]+)"[^}]*\}\s+(?P<v>\S+)')


def parse_histograms(text: str, names: Iterable[str]) -> dict[str, Histogram]:
    """The unlabelled histograms `names` from an exposition page; other lines are skipped
    without parsing (a page of a large fleet holds one heartbeat gauge per host)."""
    wanted = set(names)
    found: dict[str, list[tuple[float, float]]] = {n: [] for n in wanted}
    for line in text.splitlines():
        if "_bucket{" not in line:
            continue
        match = _BUCKET.match(line)
        if match and match["name"] in wanted:
            found[match["name"]].append((float(match["le"]), float(match["v"])))
    return {n: Histogram(tuple(sorted(b))) for n, b in found.items()}


def gauge_value(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


_LABEL = re.compile(r'(\w+)="([^"]*)"')


def gauge_sum(text: str, name: str, **labels: str) -> float:
    """The sum of every series of gauge `name` whose labels include `labels` (0 when none)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        found = dict(_LABEL.findall(head))
        if all(found.get(key) == wanted for key, wanted in labels.items()):
            total += float(value)
    return total
