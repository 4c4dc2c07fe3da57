"""`kumo bench density` at CI size (40 simulated hypervisors, 20 baremetal nodes enrolled through
the Ironic API, 200 servers in creates of 3, SQLite), the developer benchmark's fleet read on
the database it leaves, the fleet poll it relies on, and the histogram arithmetic its figures
come from. Checks that every phase runs and its figures are consistent, not speed: on a shared
CI machine they mean nothing."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from bench.scheduler_pass import time_pass
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.compute.models import ComputeHost
from kumo.config import Settings
from kumo.db import Database
from kumo.density.measure import percentile
from kumo.density.run import DensityOptions, run_density
from kumo.promtext import Histogram
from kumo.promtext import histograms as parse_histograms
from tests.conftest import Cloud, wait_for

INSTANCES = 200
HYPERVISORS = 40
BAREMETAL = 20


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run_dir = tmp_path_factory.mktemp("density")
    path = run_dir / "report.json"
    options = DensityOptions(
        hypervisors=HYPERVISORS,
        baremetal=BAREMETAL,
        instances=INSTANCES,
        checkpoints=2,
        per_request=3,
        probe=4,
        list_calls=5,
        heartbeat_window=2.0,
        long_polls=10,
        boot_timeout=120,
        report=path,
        progress=False,
        state_dir=run_dir / "cloud",  # kept: the fleet read below times the database it leaves
        keep=True,
    )
    result = run_density(options)
    assert json.loads(path.read_text()) == json.loads(json.dumps(result))
    return result


@pytest.mark.bench
def test_every_server_boots_through_the_agent_protocol(report: dict[str, Any]) -> None:
    last = report["checkpoints"][-1]
    assert (last["instances"], last["active"], last["error"], last["create_failures"]) == (
        INSTANCES,
        INSTANCES,
        0,
        0,
    )
    agents = report["agents"]
    assert agents["spawned"] == agents["tasks_ok"] == INSTANCES + 4 * len(report["checkpoints"])
    assert agents["tasks_failed"] == 0
    assert report["register"]["hosts"] == HYPERVISORS
    baremetal = report["baremetal"]
    assert (baremetal["enrolled"], baremetal["errors"]) == (BAREMETAL, 0)
    assert baremetal["conductor_heartbeat"]["nodes_owned"] == BAREMETAL  # one conductor keeps them up
    # Later heartbeats hold the assignment's version: answered "unchanged", without nodes.
    assert baremetal["conductor_heartbeat"]["unchanged_answers"] == 3


@pytest.mark.bench
def test_lone_requests_are_probed_at_every_checkpoint(report: dict[str, Any]) -> None:
    for point in report["checkpoints"]:
        probe = point["probe"]
        assert probe["servers"] == 4 and probe["create_failures"] == []
        assert probe["schedule_claim"]["count"] == 4  # each a pass of its own, each claimed once
        assert 0 < probe["schedule_claim"]["p50_ms"] <= probe["schedule_claim"]["p99_ms"]
        assert probe["create_to_active_ms"]["calls"] == 4
    assert report["agents"]["spawned"] == INSTANCES + 4 * len(report["checkpoints"])
    lone = report["checkpoints"][-1]["probe"]["schedule_claim"]["p99_ms"]
    assert report["targets"]["schedule_plus_claim_p99_ms"]["measured"] == lone


@pytest.mark.bench
def test_scheduler_histograms_cover_every_instance(report: dict[str, Any]) -> None:
    points = report["checkpoints"]
    assert [p["instances"] for p in points] == [INSTANCES // 2, INSTANCES]
    assert sum(p["claim"]["count"] for p in points) == INSTANCES  # one successful claim each
    assert sum(p["schedule_claim_per_instance"]["count"] for p in points) == INSTANCES
    assert sum(p["schedule"]["count"] for p in points) >= INSTANCES
    for point in points:
        both = point["schedule_plus_claim"]
        assert 0 < point["schedule"]["p50_ms"] <= point["schedule"]["p99_ms"]
        assert both["p99_upper_bound_ms"] is None or both["p99_upper_bound_ms"] >= both["p99_at_least_ms"]
        assert point["hosts"] == {"up": HYPERVISORS + BAREMETAL, "down": 0}  # the cloud's kumo_hosts


@pytest.mark.bench
def test_the_fleet_read_is_timed_on_the_database_the_run_leaves(report: dict[str, Any]) -> None:
    """The scheduler's internals are timed by the developer benchmark (bench/scheduler_pass.py,
    in its own process), not by the operator's command: here on the database the run kept."""
    url = Settings(state_dir=report["options"]["state_dir"], database_url="").resolved_database_url
    timed = time_pass(url, batch=1, repeats=2, whole_batch=1)
    whole = timed["whole_fleet"]
    assert whole["hosts_in_snapshot"] == HYPERVISORS + BAREMETAL
    assert whole["read_ms"]["p50"] > 0 and whole["schedule_ms"]["p50"] > 0
    sampled = timed["fleet_index"]
    assert 0 < sampled["hosts_in_snapshot"] <= HYPERVISORS
    assert sampled["read_ms"]["p50"] > 0 and sampled["schedule_ms"]["p50"] > 0


@pytest.mark.bench
def test_costs_are_measured(report: dict[str, Any]) -> None:
    beats = report["heartbeats"]
    assert beats["sent"] > 0 and beats["errors"] == 0
    assert beats["api_cpu_ms_per_heartbeat"] is not None and beats["api_cpu_ms_per_heartbeat"] >= 0
    polls = report["long_polls"]
    assert polls["pollers"] == 10 and polls["failed"] == 0 and polls["answered"] >= 10
    listing = report["checkpoints"][-1]["list_detail_limit_1000_ms"]
    earlier_probes = 4 * (len(report["checkpoints"]) - 1)  # the list runs before its checkpoint's probe
    assert listing["calls"] == 5 and listing["servers_per_page"] == INSTANCES + earlier_probes
    assert 0 < listing["p50"] <= listing["p95"]
    assert report["checkpoints"][0]["list_detail_limit_1000_ms"]["servers_per_page"] == INSTANCES // 2
    assert report["memory"]["api"]["worker_max_mb"] > 20
    assert report["memory"]["agents_process_mb"] > 20
    assert report["database"] == {"kind": "sqlite", "size_mb": report["database"]["size_mb"]}
    assert report["database"]["size_mb"] > 0
    assert set(report["targets"]) == {
        "schedule_plus_claim_p99_ms",
        "list_1000_p95_ms",
        "api_worker_rss_mb",
        "heartbeat_pct_of_core",
        "heartbeat_batched_pct_of_core",
        "scale",
    }
    batched = report["heartbeats_batched"]
    assert batched["sent"] >= HYPERVISORS and batched["errors"] == 0
    assert batched["calls"] < batched["sent"]  # a thousand hosts per call here: one call each round


# ---------------------------------------------------------------------------- the fleet poll


def test_fleet_poll_hands_out_work_of_the_listed_hosts_only(cloud: Cloud) -> None:
    token = cloud.settings.secret("agent_token")
    internal = httpx.Client(
        base_url=f"{cloud.url}/internal/v1", headers={AGENT_TOKEN_HEADER: token}, timeout=30
    )
    for name in ("fp-1", "fp-2"):
        report = {"name": name, "vcpus": 8, "memory_mb": 16384, "disk_gb": 100}
        assert internal.post("/hosts", json=report).status_code == 204
    with cloud.client() as c:
        flavor = c.post(
            "/compute/v2.1/flavors", json={"flavor": {"name": "fp", "vcpus": 1, "ram": 64, "disk": 1}}
        )
        image = c.post(
            "/image/v2/images", json={"name": "fp", "disk_format": "raw", "container_format": "bare"}
        )
        c.put(
            f"/image/v2/images/{image.json()['id']}/file",
            content=b"x",
            headers={"Content-Type": "application/octet-stream"},
        )
        body = {
            "server": {
                "name": "fp",
                "flavorRef": flavor.json()["flavor"]["id"],
                "imageRef": image.json()["id"],
                "networks": "none",
            }
        }
        server = c.post("/compute/v2.1/servers", json=body).json()["server"]["id"]

        poll = internal.post("/tasks/poll", json={"hosts": ["fp-1", "fp-2"], "wait": 10})
        assert poll.status_code == 200
        (task,) = poll.json()["tasks"]
        assert (task["kind"], task["instance_uuid"]) == ("spawn", server)
        assert task["host"] in ("fp-1", "fp-2")
        other = "fp-2" if task["host"] == "fp-1" else "fp-1"
        assert internal.post("/tasks/poll", json={"hosts": [other], "wait": 0}).json() == {"tasks": []}
        busy = {"hosts": ["fp-1", "fp-2"], "wait": 0.3, "busy": [task["id"]]}
        assert internal.post("/tasks/poll", json=busy).json() == {"tasks": []}

        result = {"results": [{"task_id": task["id"], "ok": True, "power_state": 1}]}
        assert internal.post("/tasks/results", json=result).status_code == 204
        wait_for(lambda: c.get(f"/compute/v2.1/servers/{server}").json()["server"]["status"] == "ACTIVE")
        assert internal.post("/tasks/poll", json={"hosts": ["fp-1", "fp-2"]}).json() == {"tasks": []}


def test_fleet_heartbeat_updates_every_listed_host_and_names_the_unknown(cloud: Cloud) -> None:
    token = {AGENT_TOKEN_HEADER: cloud.settings.secret("agent_token")}
    internal = httpx.Client(base_url=f"{cloud.url}/internal/v1", headers=token, timeout=30)
    for name in ("hb-1", "hb-2"):
        report = {"name": name, "vcpus": 8, "memory_mb": 16384, "disk_gb": 100}
        assert internal.post("/hosts", json=report).status_code == 204
    db = Database(cloud.settings.resolved_database_url)
    try:
        with db.transaction() as s:
            s.execute(update(ComputeHost).values(last_heartbeat=None))
        resp = internal.put("/heartbeats", json={"hosts": ["hb-1", "gone", "hb-2"]})
        assert resp.status_code == 200 and resp.json() == {"unknown": ["gone"]}
        with db.read() as s:
            beats = dict(s.execute(select(ComputeHost.name, ComputeHost.last_heartbeat)).all())
        assert beats["hb-1"] is not None and beats["hb-2"] is not None
    finally:
        db.dispose()
    assert internal.put("/heartbeats", json={"hosts": []}).status_code == 400
    bad = httpx.put(f"{cloud.url}/internal/v1/heartbeats", json={"hosts": ["hb-1"]})
    assert bad.status_code == 401


def test_fleet_poll_needs_the_agent_token_and_hosts(cloud: Cloud) -> None:
    url = f"{cloud.url}/internal/v1/tasks/poll"
    assert httpx.post(url, json={"hosts": ["x"]}, headers={AGENT_TOKEN_HEADER: "nope"}).status_code == 401
    token = {AGENT_TOKEN_HEADER: cloud.settings.secret("agent_token")}
    resp = httpx.post(url, json={"hosts": []}, headers=token)
    assert 400 <= resp.status_code < 500


# ---------------------------------------------------------------------------- histogram arithmetic

PAGE = """# HELP kumo_schedule_seconds x
kumo_schedule_seconds_bucket{le="0.001"} 50.0
kumo_schedule_seconds_bucket{le="0.01"} 90.0
kumo_schedule_seconds_bucket{le="0.1"} 99.0
kumo_schedule_seconds_bucket{le="+Inf"} 100.0
kumo_schedule_seconds_count 100.0
kumo_hosts{hypervisor_type="fake",state="up"} 3.0
"""


def test_histogram_quantiles_interpolate_within_buckets() -> None:
    h = parse_histograms(PAGE, ["kumo_schedule_seconds"])["kumo_schedule_seconds"]
    assert h.count == 100
    assert h.quantile(0.5) == pytest.approx(0.001)
    assert h.quantile(0.7) == pytest.approx(0.001 + (0.01 - 0.001) * 20 / 40)
    assert h.quantile(0.99) == pytest.approx(0.1)
    assert h.quantile(0.995) == pytest.approx(0.1)  # above the top bucket: only a lower bound
    assert h.share_at_most(0.01) == pytest.approx(0.9)
    assert h.top_bound == 0.1


def test_histogram_differences_are_per_checkpoint() -> None:
    later = parse_histograms(PAGE, ["kumo_schedule_seconds"])["kumo_schedule_seconds"]
    earlier = Histogram(((0.001, 50.0), (0.01, 50.0), (0.1, 50.0), (math.inf, 50.0)))
    delta = later - earlier
    assert delta.count == 50
    assert delta.quantile(0.5) == pytest.approx(0.001 + (0.01 - 0.001) * 25 / 40)
    assert (delta + earlier).buckets == later.buckets
    assert Histogram(()).quantile(0.5) is None


def test_nearest_rank_percentile() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert percentile([], 50) is None


@pytest.mark.bench
@pytest.mark.postgres
def test_density_with_a_scheduler_process_counts_its_histograms(
    tmp_path_factory: pytest.TempPathFactory, pg_database_url: str
) -> None:
    """--scheduler-processes on PostgreSQL: the API workers schedule nothing, the `kumo scheduler`
    process does, and its metrics page is what the figures are read from."""
    result = run_density(
        DensityOptions(
            hypervisors=10,
            instances=30,
            database="postgresql",
            workers=2,
            scheduler_processes=1,
            checkpoints=1,
            per_request=3,
            probe=3,
            list_calls=2,
            heartbeat_window=1.0,
            long_polls=0,
            boot_timeout=120,
            progress=False,
        )
    )
    point = result["checkpoints"][-1]
    assert (point["active"], point["error"], point["create_failures"]) == (30, 0, 0)
    assert point["claim"]["count"] == 30 and point["probe"]["schedule_claim"]["count"] == 3
    assert len(point["scheduler_rss_mb"]) == 1 and point["scheduler_rss_mb"][0] > 20
    assert point["vacuum_seconds"] is not None  # autovacuum's stand-in ran before the list and probe
