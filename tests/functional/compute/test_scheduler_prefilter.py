"""The scheduler's resource prefilter is the worker's fleet index (kumo.compute.fleet_index):
a pass weighs only the hosts it offers (at most PREFILTER_LIMIT that fit, walked from a random
provider), and a request that page cannot place is rescheduled on the whole fleet, never
failed."""

from __future__ import annotations

import httpx
import pytest

from kumo.compute import fleet_index, scheduling
from tests.conftest import Cloud, wait_for
from tests.functional.compute.helpers import API, add_instance, project_id, register_hosts


def _prepare(c: httpx.Client) -> tuple[str, str]:
    flavor = c.post(f"{API}/flavors", json={"flavor": {"name": "t1", "vcpus": 2, "ram": 1024, "disk": 1}})
    image = c.post(
        "/image/v2/images",
        json={"name": "img", "disk_format": "raw", "container_format": "bare", "visibility": "public"},
    ).json()
    c.put(
        f"/image/v2/images/{image['id']}/file",
        content=b"x" * 1024,
        headers={"Content-Type": "application/octet-stream"},
    )
    return str(flavor.json()["flavor"]["id"]), str(image["id"])


def _host_of(c: httpx.Client, flavor: str, image: str, **extra: str) -> str:
    body = {"name": "vm", "flavorRef": flavor, "imageRef": image, "networks": "none", **extra}
    resp = c.post(f"{API}/servers", json={"server": body}, headers={"OpenStack-API-Version": "compute 2.37"})
    assert resp.status_code == 202, resp.text
    sid = resp.json()["server"]["id"]

    def placed() -> str | None:
        server = c.get(f"{API}/servers/{sid}").json()["server"]
        assert server["status"] != "ERROR", server.get("fault")
        return server.get("OS-EXT-SRV-ATTR:host")

    return str(wait_for(placed))


def _az_on(c: httpx.Client, host: str) -> None:
    """Put `host` alone in availability zone az1."""
    agg = c.post(f"{API}/os-aggregates", json={"aggregate": {"name": "a", "availability_zone": "az1"}})
    c.post(f"{API}/os-aggregates/{agg.json()['aggregate']['id']}/action", json={"add_host": {"host": host}})


@pytest.fixture
def one_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page of one candidate, walked from the first provider id, from an index synced at the
    start of each pass (not only between passes: these tests write allocations directly)."""
    monkeypatch.setattr(scheduling, "PREFILTER_LIMIT", 1)
    monkeypatch.setattr(scheduling, "FLEET_SYNC_MAX_AGE", 0.0)
    monkeypatch.setattr(fleet_index.random, "randrange", lambda count: 0)


def test_a_pass_weighs_only_the_candidates_page(cloud: Cloud, one_candidate: None) -> None:
    register_hosts(cloud, "h1", "h2", "h3", memory_mb=2048)  # 1,536 MB (x the RAM ratio) for guests
    with cloud.client() as c:
        admin = project_id(c, "admin")
        add_instance(cloud, "h1", admin, ram=256)  # the spread weigher alone would avoid h1
        flavor, image = _prepare(c)
        assert _host_of(c, flavor, image) == "h1"  # the only candidate on the page
        add_instance(cloud, "h1", admin, ram=1024)  # 2,304 MB used: no room for 1,024 more
        assert _host_of(c, flavor, image) == "h2"  # the first provider that still fits


def test_a_request_the_page_cannot_place_reads_the_whole_fleet(cloud: Cloud, one_candidate: None) -> None:
    register_hosts(cloud, "h1", "h2", "h3")
    with cloud.client(microversion="2.64") as c:
        _az_on(c, "h3")
        flavor, image = _prepare(c)
        # The page holds h1 only; the AvailabilityZoneFilter rejects it; the whole fleet has h3.
        assert _host_of(c, flavor, image, availability_zone="az1") == "h3"


def test_a_request_the_sample_cannot_place_widens_step_by_step(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass of one request reads a small sample (PREFILTER_FIRST); when the policy filters
    reject all of it, the pass reads PREFILTER_SAMPLE hosts, then a page of PREFILTER_LIMIT,
    before it would read the whole fleet."""
    monkeypatch.setattr(scheduling, "PREFILTER_FIRST", 1)
    monkeypatch.setattr(scheduling, "PREFILTER_PER_REQUEST", 1)
    monkeypatch.setattr(scheduling, "PREFILTER_SAMPLE", 2)
    monkeypatch.setattr(scheduling, "PREFILTER_LIMIT", 3)
    monkeypatch.setattr(scheduling, "FLEET_SYNC_MAX_AGE", 0.0)  # the hosts were just registered
    monkeypatch.setattr(fleet_index.random, "randrange", lambda count: 0)
    reads: list[int | None] = []
    real_load = scheduling.load_snapshot

    def counting_load(*args: object, **kwargs: object) -> object:
        ids = kwargs.get("provider_ids")
        reads.append(None if ids is None else len(ids))  # type: ignore[arg-type]
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scheduling, "load_snapshot", counting_load)
    register_hosts(cloud, "h1", "h2", "h3", "h4")
    with cloud.client(microversion="2.64") as c:
        _az_on(c, "h3")
        flavor, image = _prepare(c)
        reads.clear()
        assert _host_of(c, flavor, image, availability_zone="az1") == "h3"
    # The sample (h1), the wider sample (h1, h2), the page (h1-h3): never the whole fleet.
    assert reads == [1, 2, 3]
