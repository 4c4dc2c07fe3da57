"""Request ids follow the work from the API to the agent's log lines; /metrics has the fleet."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import Cloud, Fleet, wait_for


def test_request_id_reaches_scheduler_and_agent_logs(
    cloud: Cloud, fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fleet.add("h1")
    with cloud.client() as c:
        flavor = c.post(
            "/compute/v2.1/flavors", json={"flavor": {"name": "f", "vcpus": 1, "ram": 64, "disk": 1}}
        )
        image = c.post(
            "/image/v2/images", json={"name": "i", "disk_format": "raw", "container_format": "bare"}
        ).json()
        c.put(
            f"/image/v2/images/{image['id']}/file",
            content=b"x",
            headers={"Content-Type": "application/octet-stream"},
        )
        resp = c.post(
            "/compute/v2.1/servers",
            json={
                "server": {
                    "name": "s",
                    "flavorRef": flavor.json()["flavor"]["id"],
                    "imageRef": image["id"],
                    "networks": "none",
                }
            },
        )
        request_id = resp.headers["x-openstack-request-id"]
        assert resp.headers["x-compute-request-id"] == request_id
        sid = resp.json()["server"]["id"]
        wait_for(lambda: c.get(f"/compute/v2.1/servers/{sid}").json()["server"]["status"] == "ACTIVE")
    tagged = {
        (r.name, r.getMessage().split(" ")[0])
        for r in caplog.records
        if getattr(r, "request_id", None) == request_id
    }
    loggers = {name for name, _ in tagged}
    assert "kumo.api" in loggers  # the API's own line for the request
    assert "kumo.compute.scheduling" in loggers  # the scheduler placing it
    assert "kumo.agent" in loggers  # the agent that built it


def test_metrics_expose_latency_scheduling_claims_and_heartbeats(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("h1")
    with cloud.client() as c:
        wait_for(lambda: c.get("/compute/v2.1/os-hypervisors").json()["hypervisors"])
        text = c.get("/metrics").text
    assert (
        'kumo_http_request_seconds_count{method="GET",route="/compute/v2.1/os-hypervisors",status="200"}'
        in text
    )
    assert "kumo_schedule_seconds_bucket" in text
    assert "kumo_claim_conflicts_total" in text
    assert 'kumo_hosts{hypervisor_type="fake",state="up"} 1.0' in text
    assert "kumo_agent_heartbeat_age_max_seconds" in text
    assert "kumo_agent_down_heartbeat_age_seconds{" not in text  # no host is down


def test_metrics_count_hosts_and_name_only_the_down_ones(cloud: Cloud, fleet: Fleet) -> None:
    for name in ("h1", "h2", "h3"):
        fleet.add(name)
    with cloud.client(microversion="2.53") as c:
        wait_for(lambda: len(c.get("/compute/v2.1/os-hypervisors").json()["hypervisors"]) == 3)
        services = {s["host"]: s["id"] for s in c.get("/compute/v2.1/os-services").json()["services"]}
        resp = c.put(f"/compute/v2.1/os-services/{services['h2']}", json={"forced_down": True})
        assert resp.status_code == 200
        text = c.get("/metrics").text
    assert 'kumo_hosts{hypervisor_type="fake",state="up"} 2.0' in text
    assert 'kumo_hosts{hypervisor_type="fake",state="down"} 1.0' in text
    down = [line for line in text.splitlines() if line.startswith("kumo_agent_down_heartbeat_age_seconds{")]
    assert len(down) == 1 and 'host="h2"' in down[0]
    # one series per host is gone: the page does not grow with the fleet
    assert "kumo_agent_heartbeat_age_seconds{" not in text
