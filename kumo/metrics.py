"""Prometheus metrics, one registry per process (multiprocess workers each expose their own).
Definitions only: the gauges read from the database are set at scrape time by
kumo.compute.fleet_metrics."""

from __future__ import annotations

import os

from prometheus_client import Counter, Gauge, Histogram

REQUEST_LATENCY = Histogram(
    "kumo_http_request_seconds",
    "API request latency by route and status",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SCHEDULE_SECONDS = Histogram(
    "kumo_schedule_seconds",
    "Time to pick a host for one instance (pure scheduling, no I/O)",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)
CLAIM_SECONDS = Histogram(
    "kumo_claim_seconds",
    "Time to commit one claim (generation compare-and-swap)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
SCHEDULE_CLAIM_SECONDS = Histogram(
    "kumo_schedule_claim_seconds",
    "Scheduler time for one instance, committed: its share of its pass's fleet read, the filters "
    "and weighers, and its claim (for a pass of one instance, the latency it saw)",
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
# Boot latency: from a server's create request to its first spawn reported done (ACTIVE), observed
# by the worker that settles the spawn (kumo.compute.server_ops.settle returns it, its caller
# records it after its commit: record_boots); an unshelve is no boot.
SERVER_BOOT_SECONDS = Histogram(
    "kumo_server_boot_seconds",
    "Seconds from a server's create request to its first spawn done (created_at to launched_at), "
    "by kind (hypervisor or baremetal), counted once its settling transaction committed",
    ["kind"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600),
)
CLAIM_CONFLICTS = Counter("kumo_claim_conflicts_total", "Claims lost to a concurrent generation change")
SCHEDULE_FAILURES = Counter("kumo_no_valid_host_total", "Instances that found no valid host")
# The fleet's liveness as aggregates: a series per host made every scrape of a 20,000-host fleet
# 1.2 MB and 1.4 s. Only the hosts that are down get a series of their own (the ones to act on).
HOSTS = Gauge(
    "kumo_hosts",
    "Compute hosts (hypervisors and baremetal nodes) by type and liveness",
    ["hypervisor_type", "state"],
)
HEARTBEAT_AGE_MAX = Gauge(
    "kumo_agent_heartbeat_age_max_seconds", "Seconds since the oldest heartbeat of a host that is up"
)
DOWN_HOST_AGE = Gauge(
    "kumo_agent_down_heartbeat_age_seconds",
    "Seconds since the last heartbeat of each host that is down (the 1,000 oldest)",
    ["host"],
)
# The health canaries (kumo/canary), read from their results at scrape time: one series per
# zone or host canaried recently (the last CANARY_SERIES runs' targets).
CANARY_LAST_OK = Gauge(
    "kumo_canary_last_success",
    "Whether the last canary of a zone or host passed (1) or failed (0)",
    ["scope", "target"],
)
CANARY_LAST_SECONDS = Gauge(
    "kumo_canary_last_duration_seconds",
    "How long the last canary of a zone or host took",
    ["scope", "target"],
)
CANARY_LAST_AGE = Gauge(
    "kumo_canary_last_run_age_seconds",
    "Seconds since the last canary of a zone or host finished",
    ["scope", "target"],
)
CANARY_HOSTS = Gauge(
    "kumo_canary_hosts",
    "Compute hosts by their canaries' effect: down_weighted, disabled (reason canary)",
    ["state"],
)
CANARY_SERIES = 5000
TASKS_PENDING = Gauge("kumo_tasks_pending", "Work rows not yet finished by agents")
# Each API worker keeps its own registry: its pid tells the pages apart (workers spawned together
# can share a process_start_time_seconds).
WORKER_PID = Gauge("kumo_api_worker_pid", "Process id of the API worker that answered this scrape")
WORKER_PID.set_function(os.getpid)
DOWN_HOST_SERIES = 1000
# The metadata service (kumo.metadata), in each agent process that answers guests.
METADATA_CACHE_HITS = Counter(
    "kumo_metadata_cache_hits_total", "Metadata requests answered from the edge cache's fresh bundle"
)
METADATA_CACHE_MISSES = Counter(
    "kumo_metadata_cache_misses_total",
    "Metadata requests that found no fresh bundle (they wait for a backend read, theirs or a shared one)",
)
METADATA_BACKEND_FETCHES = Counter(
    "kumo_metadata_backend_fetches_total", "Instance bundles read from the API by the metadata edge cache"
)
METADATA_ERRORS = Counter("kumo_metadata_errors_total", "Metadata requests answered with an error", ["code"])
METADATA_REQUEST_SECONDS = Histogram(
    "kumo_metadata_request_seconds",
    "Metadata request latency, from its head read to its answer written",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
# The rebalancer (kumo.rebalance). Steal per host: only hosts losing CPU get a series (set at
# scrape time from the latest reports, as the down hosts' heartbeat ages).
HOST_STEAL_CORES = Gauge(
    "kumo_host_steal_cores",
    "Cores the host's guests wanted but waited for (Σ vcpu delay), when above 0",
    ["host"],
)
HOST_CPU_DEMAND = Gauge(
    "kumo_fleet_cpu_demand_cores", "Σ of every reporting host's guest CPU demand (run + delay)"
)
REBALANCE_PLANS = Counter("kumo_rebalance_plans_total", "Action plans the rebalancer's audits produced")
REBALANCE_MOVES = Counter(
    "kumo_rebalance_moves_total",
    "Rebalancer actions finished, by outcome (SUCCEEDED, FAILED, SKIPPED)",
    ["state"],
)
REBALANCE_PLANS_WAITING = Counter(
    "kumo_rebalance_plans_waiting_total",
    "Auto-triggered action plans left RECOMMENDED because another plan was running",
)
REBALANCE_VETOES = Counter("kumo_rebalance_vetoes_total", "Moves a pre-migrate drain hook refused")
REBALANCE_SKIPPED = Counter(
    "kumo_rebalance_skipped_total", "Servers of hot hosts a plan left in place, by reason", ["reason"]
)
PRECACHE_BYTES = Counter(
    "kumo_precache_bytes_total",
    "Image bytes the hosts of precache jobs copied, by where from (origin: the image service; peer)",
    ["source"],
)
# Counted by the internal image file route as each chunk is handed to the connection: what the
# image service (the precache "origin") really sent to agents, whatever the agents report.
IMAGE_BYTES_TO_AGENTS = Counter(
    "kumo_image_sent_to_agents_bytes_total",
    "Image data bytes the internal image file route (GET /internal/v1/images/{id}/file) sent to agents",
)
