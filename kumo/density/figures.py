"""How a density run's report is read: quantiles from the cloud's histograms, the bound on the
sum of two of them, and the verdict against the targets of a LINE-size fleet (Yahoo's density
test before production). Pure functions of the figures; nothing here talks to the cloud.

Quantiles read off Prometheus buckets are interpolated within a bucket, so a p99 that lands in
the 10-15 ms bucket reads as a value inside it; one above the top bucket is only a lower bound.
"""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

from kumo import promtext
from kumo.density import measure

# What a LINE-size fleet needs of the control plane; a measure is met when strictly below.
TARGETS = {
    "schedule_plus_claim_p99_ms": 10.0,
    "list_1000_p95_ms": 200.0,
    "api_worker_rss_mb": 300.0,
    "heartbeat_pct_of_core": 10.0,
    "heartbeat_batched_pct_of_core": 10.0,
}
SCALE = {"hypervisors": 10_000, "baremetal": 50_000, "instances": 100_000, "database": "postgresql"}


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def mb(size: float | None) -> float | None:
    return None if size is None else round(size / 1024 / 1024, 1)


def latency(samples: list[float], *qs: float) -> dict[str, Any]:
    return {"calls": len(samples), **{f"p{q:g}": ms(measure.percentile(samples, q)) for q in qs}}


def histogram_summary(h: promtext.Histogram) -> dict[str, Any]:
    """Quantiles read off the buckets; one that falls above the top bucket is only known to be
    at least that bound (`share_above_top_bucket` says how many observations are up there)."""
    top = h.top_bound
    return {
        "count": int(h.count),
        "p50_ms": ms(h.quantile(0.5)),
        "p99_ms": ms(h.quantile(0.99)),
        "p99_5_ms": ms(h.quantile(0.995)),
        "share_within_10ms": None if h.count == 0 else round(h.share_at_most(0.01) or 0.0, 4),
        "top_bucket_ms": ms(top),
        "share_above_top_bucket": (
            None if h.count == 0 or top is None else round(1 - (h.share_at_most(top) or 0.0), 4)
        ),
    }


def sum_or_none(*values: float | None) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 1) if known else None


def met(measured: float | str | None, target: float) -> bool | None:
    if isinstance(measured, str):  # ">= x": a lower bound
        return False if float(measured.lstrip(">= ")) >= target else None
    return None if measured is None else measured < target


def p99_verdict(both: dict[str, float | None]) -> float | str | None:
    if both.get("p99_upper_bound_ms") is not None:
        return both["p99_upper_bound_ms"]
    at_least = both.get("p99_at_least_ms")
    return None if at_least is None else f">= {at_least}"


def sum_bound(schedule: promtext.Histogram, claim: promtext.Histogram) -> dict[str, float | None]:
    """The two histograms are separate, so the percentile of their sum is bounded, not read:
    P(s + c > a + b) <= P(s > a) + P(c > b), hence p99(s + c) <= p99.5(s) + p99.5(c). When a
    p99.5 lies above its top bucket there is no upper bound, only p99(s + c) >= p99(s), p99(c)."""
    parts = [schedule.quantile(0.5), claim.quantile(0.5), schedule.quantile(0.995), claim.quantile(0.995)]
    if any(p is None for p in parts):
        return {"p50_approx_ms": None, "p99_upper_bound_ms": None, "p99_at_least_ms": None}
    s50, c50, s995, c995 = (p or 0.0 for p in parts)
    beyond = any((h.share_at_most(h.top_bound or math.inf) or 0.0) < 0.995 for h in (schedule, claim))
    return {
        "p50_approx_ms": ms(s50 + c50),
        "p99_upper_bound_ms": None if beyond else ms(s995 + c995),
        "p99_at_least_ms": ms(max(schedule.quantile(0.99) or 0.0, claim.quantile(0.99) or 0.0)),
    }


def checkpoint_line(point: dict[str, Any]) -> str:
    """One line of progress for a checkpoint."""
    both = point["schedule_plus_claim"]
    lone = (point.get("probe") or {}).get("schedule_claim") or {}
    return (
        f"{point['instances']} instances on {point['hosts']['up']} hosts up: "
        f"{point['active_per_second']}/s ACTIVE, schedule+claim "
        f"p50≈{both['p50_approx_ms']} ms p99 {p99_verdict(both)} ms, lone request "
        f"p50 {lone.get('p50_ms')} / p99 {lone.get('p99_ms')} ms, pure schedule p50 "
        f"{point['schedule']['p50_ms']} ms, create p50 "
        f"{point['create_ms']['p50']} ms, API RSS "
        f"{point['api_rss']['worker_max_mb']} MB"
    )


def summary_table(report: dict[str, Any]) -> Table:
    table = Table(title="kumo bench density")
    table.add_column("metric")
    table.add_column("measured", justify="right")
    table.add_column("target", justify="right")
    table.add_column("met")
    for name, verdict in report.get("targets", {}).items():
        if name == "scale":
            continue
        met = verdict["met"]
        table.add_row(
            name, str(verdict["measured"]), str(verdict["target"]), {True: "yes", False: "NO", None: "?"}[met]
        )
    scale = report.get("targets", {}).get("scale", {})
    if scale:
        run, want = scale["run"], scale["target"]
        table.add_row(
            "fleet (hv / bm / instances)",
            f"{run['hypervisors']} / {run['baremetal']} / {run['instances']} ({run['database']})",
            f"{want['hypervisors']} / {want['baremetal']} / {want['instances']} ({want['database']})",
            "",
        )
    return table


def verdict(report: dict[str, Any], fleet: dict[str, Any]) -> dict[str, Any]:
    """Each target's measured figure and whether it is met (None: not measured, or only a lower
    bound below the target), and the run's fleet (`fleet`: hypervisors, baremetal, instances)
    beside the LINE-size one. The lone-request probe's p99 is the schedule + claim figure when
    the run had a probe; otherwise the bound from the storm's two histograms."""
    checkpoints = report.get("checkpoints") or [{}]
    last = checkpoints[-1]
    heartbeat = report.get("heartbeats", {})
    batched = report.get("heartbeats_batched", {})
    measured = {
        "schedule_plus_claim_p99_ms": (
            (last.get("probe") or {}).get("schedule_claim", {}).get("p99_ms")
            if last.get("probe")
            else p99_verdict(last.get("schedule_plus_claim") or {})
        ),
        "list_1000_p95_ms": (last.get("list_detail_limit_1000_ms") or {}).get("p95"),
        "api_worker_rss_mb": (report.get("memory", {}).get("api") or {}).get("worker_max_mb"),
        "heartbeat_pct_of_core": heartbeat.get("api_pct_of_core_projected_fleet"),
        # The fleet's heartbeats in batches of a thousand, API and PostgreSQL together.
        "heartbeat_batched_pct_of_core": sum_or_none(
            batched.get("api_pct_of_core_projected_fleet"),
            batched.get("database_pct_of_core_projected_fleet"),
        ),
    }
    result: dict[str, Any] = {
        name: {"target": target, "measured": measured[name], "met": met(measured[name], target)}
        for name, target in TARGETS.items()
    }
    result["scale"] = {
        "target": dict(SCALE),
        "run": {**fleet, "database": report.get("database", {}).get("kind")},
    }
    return result
