"""What the benchmarks read off the system: process CPU and memory from /proc, percentiles.
Linux only (/proc). A /metrics page is read by kumo.promtext (histograms, gauges)."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Iterable, Sequence
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
