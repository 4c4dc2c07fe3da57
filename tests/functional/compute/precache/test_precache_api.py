"""os-kumo-image-precache and Nova's 2.81 route over a cloud of fake-driver agents in two racks,
each agent with its own image cache and peer endpoint (the real agent protocol)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kumo import promtext
from kumo.agent import precache as agent_precache
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.compute.precache import service
from kumo.compute.precache.models import PrecacheHost
from kumo.config import get_settings
from kumo.db import Database
from kumo.work import queue
from tests.conftest import DEMO_PASSWORD, Cloud, Fleet, wait_for
from tests.functional.compute.test_dead_host import _force_down
from tests.functional.helpers import upload_image

API = "/compute/v2.1/os-kumo-image-precache"
SIZE = 1024 * 1024 + 17


def _hosts(fleet: Fleet, tmp_path: Path, racks: dict[str, list[str]]) -> None:
    for rack, names in racks.items():
        for name in names:
            fleet.add(name, rack=rack, image_cache=tmp_path / "caches" / name)


def _finished(c: httpx.Client, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job: dict[str, Any] = c.get(f"{API}/{job_id}").json()["job"]
        return job if job["state"] != "running" else None

    return wait_for(done, timeout=timeout)


def _by_host(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in job["hosts"]}


def test_one_origin_copy_per_rack_and_peers_for_the_rest(cloud: Cloud, fleet: Fleet, tmp_path: Path) -> None:
    _one_origin_copy_per_rack(cloud, fleet, tmp_path)


@pytest.mark.postgres
def test_one_origin_copy_per_rack_on_postgresql(pg_cloud: Cloud, pg_fleet: Fleet, tmp_path: Path) -> None:
    """The same on PostgreSQL: the migration, row locks of the job, concurrent reports."""
    _one_origin_copy_per_rack(pg_cloud, pg_fleet, tmp_path)


def _sent_to_agents(cloud: Cloud) -> float:
    """What the internal image file route sent, counted there (not the agents' reports)."""
    return promtext.total(httpx.get(f"{cloud.url}/metrics").text, "kumo_image_sent_to_agents_bytes_total")


def _one_origin_copy_per_rack(cloud: Cloud, fleet: Fleet, tmp_path: Path) -> None:
    racks = {"r1": ["pc-a1", "pc-a2", "pc-a3"], "r2": ["pc-b1", "pc-b2", "pc-b3"]}
    _hosts(fleet, tmp_path, racks)
    with cloud.client() as c:
        image = upload_image(c, content=os.urandom(SIZE))
        sent = _sent_to_agents(cloud)
        resp = c.post(API, json={"image_ids": [image], "hosts": [h for hs in racks.values() for h in hs]})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
        assert resp.headers["X-Kumo-Precache-Job"] == job_id
        assert resp.headers["Location"].endswith(f"{API}/{job_id}")
        job = _finished(c, job_id)
        assert job["state"] == "done"
        assert job["overall_status"] == "6 of 6 hosts done. 0 errors."
        assert (job["num_hosts"], job["num_hosts_done"], job["total_errors"]) == (6, 6, 0)
        assert job["bytes_from_origin"] == 2 * SIZE  # exactly one copy per rack
        assert job["bytes_from_peers"] == 4 * SIZE
        assert _sent_to_agents(cloud) - sent == 2 * SIZE  # and so the origin counted
        hosts = _by_host(job)
        assert sorted(h["origin_attempts"] for h in hosts.values()) == [0, 0, 0, 0, 1, 1]
        assert {h["state"] for h in hosts.values()} == {"cached"}
        for rack, names in racks.items():
            (seed,) = [n for n in names if hosts[n]["source"] == "origin"]
            for name in names:
                source = hosts[name]["source"]
                if name != seed:
                    assert source.startswith("peer:") and source[5:] in names  # never across racks
                assert hosts[name]["bytes"] == SIZE and hosts[name]["finished_at"]
            assert {"rack": rack, "seed": seed, "done": 3, "total": 3} in job["racks"]
        # every host holds the verified copy, published once
        for names in racks.values():
            for name in names:
                assert (tmp_path / "caches" / name / image).stat().st_size == SIZE
        scrape = httpx.get(f"{cloud.url}/metrics").text
        assert 'kumo_precache_bytes_total{source="origin"}' in scrape
        assert 'kumo_precache_bytes_total{source="peer"}' in scrape
        # Workday's second lookup: by image
        listed = c.get(API, params={"image_id": image}).json()["jobs"]
        assert [j["job_id"] for j in listed] == [job_id]
        assert c.get(API, params={"image_id": "0" * 8 + "-0000-4000-8000-" + "0" * 12}).json()["jobs"] == []


def test_a_corrupt_peer_copy_is_refused_dropped_and_another_source_used(
    cloud: Cloud, fleet: Fleet, tmp_path: Path
) -> None:
    _hosts(fleet, tmp_path, {"r1": ["pc-c1", "pc-c2"]})
    with cloud.client() as c:
        image = upload_image(c, content=os.urandom(SIZE))
        first = _finished(c, c.post(API, json={"image_ids": [image], "hosts": ["pc-c1"]}).json()["job_id"])
        assert _by_host(first)["pc-c1"]["state"] == "cached"
        copy = tmp_path / "caches" / "pc-c1" / image
        copy.chmod(0o644)
        with open(copy, "r+b") as data:  # the same size, one byte changed
            data.seek(SIZE // 2)
            byte = data.read(1)
            data.seek(SIZE // 2)
            data.write(bytes([byte[0] ^ 0xFF]))
        job = _finished(
            c, c.post(API, json={"image_ids": [image], "hosts": ["pc-c1", "pc-c2"]}).json()["job_id"]
        )
        hosts = _by_host(job)
        receiver = hosts["pc-c2"]
        assert receiver["state"] == "cached" and receiver["source"] == "origin"
        (refusal,) = receiver["refused"]
        assert refusal["peer"] == "pc-c1" and refusal["dropped"] is True
        assert "verification" in refusal["reason"]
        # the sender's bad copy was dropped and copied again, from the receiver's good one
        assert hosts["pc-c1"]["state"] == "cached" and hosts["pc-c1"]["source"] == "peer:pc-c2"
        assert job["state"] == "done" and job["total_errors"] == 0
        # each host's cache report says where its copy came from
        (c2,) = c.get("/compute/v2.1/os-kumo-image-cache/pc-c2").json()["images"]
        (c1,) = c.get("/compute/v2.1/os-kumo-image-cache/pc-c1").json()["images"]
        assert (c2["id"], c2["source"], c1["source"]) == (image, "origin", "peer:pc-c2")
        assert c1["hash_value"] == c2["hash_value"] and c1["pinned_until"] > 0
        assert (tmp_path / "caches" / "pc-c1" / image).read_bytes() == (
            tmp_path / "caches" / "pc-c2" / image
        ).read_bytes()


def test_a_dead_host_is_skipped_and_the_aggregate_route_makes_a_job(
    cloud: Cloud, fleet: Fleet, tmp_path: Path
) -> None:
    _hosts(fleet, tmp_path, {"r1": ["pc-d1", "pc-d2", "pc-d3"]})
    with cloud.client(microversion="2.81") as c:
        image = upload_image(c, content=os.urandom(SIZE))
        _force_down(c, "pc-d1")
        agg = c.post("/compute/v2.1/os-aggregates", json={"aggregate": {"name": "pc-agg"}}).json()[
            "aggregate"
        ]
        for host in ("pc-d1", "pc-d2", "pc-d3"):
            add = c.post(f"/compute/v2.1/os-aggregates/{agg['id']}/action", json={"add_host": {"host": host}})
            assert add.status_code == 200, add.text
        resp = c.post(f"/compute/v2.1/os-aggregates/{agg['id']}/images", json={"cache": [{"id": image}]})
        assert resp.status_code == 202 and resp.content == b""  # Nova's contract
        job = _finished(c, resp.headers["X-Kumo-Precache-Job"])
        assert job["aggregate_id"] == agg["id"]
        hosts = _by_host(job)
        assert (hosts["pc-d1"]["state"], hosts["pc-d1"]["error"]) == ("skipped", "host down")
        assert job["skipped_hosts"] == ["pc-d1"]
        assert {hosts["pc-d2"]["state"], hosts["pc-d3"]["state"]} == {"cached"}
        assert job["bytes_from_origin"] == SIZE
        assert job["overall_status"] == "3 of 3 hosts done. 0 errors."


def test_a_seed_that_dies_while_copying_is_replaced(
    cloud: Cloud, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    monkeypatch.setattr(settings, "precache_transfer_rate", SIZE // 10)  # the first seed: ~10 s
    monkeypatch.setattr(agent_precache, "PROGRESS_EVERY", 0.2)
    _hosts(fleet, tmp_path, {"r1": ["pc-f1", "pc-f2", "pc-f3"]})
    with cloud.client(microversion="2.53") as c:
        image = upload_image(c, content=os.urandom(SIZE))
        job_id = c.post(API, json={"image_ids": [image], "hosts": ["pc-f1", "pc-f2", "pc-f3"]}).json()[
            "job_id"
        ]
        (seed,) = [
            h["host"] for h in c.get(f"{API}/{job_id}").json()["job"]["hosts"] if h["source"] == "origin"
        ]
        _force_down(c, seed)
        monkeypatch.setattr(settings, "precache_transfer_rate", 0)  # the copies after it: at once
        job = _finished(c, job_id)  # the API's sweep (every 5 s) finds the seed down
        hosts = _by_host(job)
        assert (hosts[seed]["state"], hosts[seed]["error"]) == ("skipped", "host down")
        others = sorted(set(hosts) - {seed})
        assert {hosts[h]["state"] for h in others} == {"cached"}
        (new_seed,) = [h for h in others if hosts[h]["source"] == "origin"]  # the rack's new seed
        (last,) = set(others) - {new_seed}
        assert hosts[last]["source"] == f"peer:{new_seed}"
        assert job["state"] == "done" and job["overall_status"] == "3 of 3 hosts done. 0 errors."
        # the dead seed's agent (forced down, still running) hears 409 on its next progress report
        # and aborts its copy; its late result's bytes are recorded all the same
        seed_bytes = wait_for(
            lambda: _by_host(c.get(f"{API}/{job_id}").json()["job"])[seed]["bytes_from_origin"]
        )
        assert 0 < seed_bytes <= SIZE  # (the origin sends this small image in few chunks)
        job = c.get(f"{API}/{job_id}").json()["job"]
        assert job["bytes_from_origin"] == SIZE + seed_bytes
        assert job["bytes_from_peers"] == SIZE
        assert os.path.exists(tmp_path / "caches" / new_seed / image)
        assert not os.path.exists(tmp_path / "caches" / seed / image)  # aborted: nothing published


def test_cancel_skips_the_queued_hosts(
    cloud: Cloud, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = 4 * 1024 * 1024 + 17
    monkeypatch.setattr(get_settings(), "precache_transfer_rate", size // 2)  # a seed takes ~2 s
    monkeypatch.setattr(agent_precache, "PROGRESS_EVERY", 0.2)
    _hosts(fleet, tmp_path, {"r1": ["pc-e1", "pc-e2", "pc-e3"]})
    with cloud.client() as c:
        image = upload_image(c, content=os.urandom(size))
        job_id = c.post(API, json={"image_ids": [image], "hosts": ["pc-e1", "pc-e2", "pc-e3"]}).json()[
            "job_id"
        ]
        running = c.get(f"{API}/{job_id}").json()["job"]
        assert running["state"] == "running" and running["num_hosts_downloading"] == 1
        assert running["num_hosts_queued"] == 2

        def progress() -> int:  # the copy in flight reports its bytes so far
            hosts = c.get(f"{API}/{job_id}").json()["job"]["hosts"]
            return sum(h["bytes"] for h in hosts if h["state"] == "downloading")

        assert 0 < wait_for(progress, timeout=5) < size  # reported while still downloading
        assert c.delete(f"{API}/{job_id}").status_code == 202
        job = _finished(c, job_id)
        assert job["state"] == "cancelled"
        states = sorted(h["state"] for h in job["hosts"])
        assert states == ["cached", "skipped", "skipped"]
        assert {h["error"] for h in job["hosts"] if h["state"] == "skipped"} == {"cancelled"}


def test_bad_input_answers_as_nova(cloud: Cloud) -> None:
    missing = "11111111-2222-4333-8444-555555555555"
    with cloud.client() as c:
        image = upload_image(c)
        for body in (
            {},
            {"image_ids": []},
            {"image_ids": ["not-a-uuid"], "hosts": ["h"]},
            {"image_ids": [image, image], "hosts": ["h"]},
            {"image_ids": [image]},
            {"image_ids": [image], "hosts": ["h"], "availability_zone": "nova"},
            {"image_ids": [image], "hosts": []},
            {"image_ids": [image], "aggregate_id": "x"},
            {"image_ids": [image], "flavor": 1},
        ):
            resp = c.post(API, json=body)
            assert resp.status_code == 400, (body, resp.text)
            assert resp.json()["badRequest"]["code"] == 400
        assert c.post(API, json={"image_ids": [image], "hosts": ["nowhere"]}).status_code == 404
        assert c.post(API, json={"image_ids": [image], "aggregate_id": 4242}).status_code == 404
        assert c.post(API, json={"image_ids": [image], "availability_zone": "nowhere"}).status_code == 404
        unknown = c.get(f"{API}/{missing}")
        assert unknown.status_code == 404 and "itemNotFound" in unknown.json()
        assert c.delete(f"{API}/{missing}").status_code == 404
        assert c.get(API, params={"image_id": "nope"}).status_code == 400
    with cloud.client(cloud.token("demo", DEMO_PASSWORD, "demo")) as member:
        assert member.get(API).status_code == 403
        assert member.post(API, json={"image_ids": [image], "hosts": ["h"]}).status_code == 403


def _slow_seed_job(
    c: httpx.Client, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, names: list[str]
) -> tuple[str, str]:
    """A job over `names` (one rack) whose seed copies for ~10 s: (job id, seed)."""
    monkeypatch.setattr(get_settings(), "precache_transfer_rate", SIZE // 10)
    _hosts(fleet, tmp_path, {"r1": names})
    image = upload_image(c, content=os.urandom(SIZE))
    job_id = c.post(API, json={"image_ids": [image], "hosts": names}).json()["job_id"]
    (seed,) = [h["host"] for h in c.get(f"{API}/{job_id}").json()["job"]["hosts"] if h["source"] == "origin"]
    return job_id, seed


def test_a_cancelling_job_whose_copying_host_dies_finishes(
    cloud: Cloud, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with cloud.client(microversion="2.53") as c:
        job_id, seed = _slow_seed_job(c, fleet, tmp_path, monkeypatch, ["pc-g1", "pc-g2"])
        assert c.delete(f"{API}/{job_id}").status_code == 202
        _force_down(c, seed)  # its copy's result never comes: the sweep must skip it
        job = _finished(c, job_id, timeout=20)
        assert job["state"] == "cancelled"
        hosts = _by_host(job)
        assert (hosts[seed]["state"], hosts[seed]["error"]) == ("skipped", "host down")


def test_a_copy_whose_task_ended_without_its_result_is_a_failed_attempt(
    cloud: Cloud, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The result of the seed's task could not be applied (server_ops.fail_unsettled fails the
    task, the hook never runs): the sweep counts the attempt as failed and the rack is seeded
    again, on another host; the first seed's late result changes nothing."""
    with cloud.client(microversion="2.53") as c:
        job_id, seed = _slow_seed_job(c, fleet, tmp_path, monkeypatch, ["pc-h1", "pc-h2"])
        database = Database(cloud.settings.resolved_database_url)
        try:
            with database.transaction() as session:
                task_id = session.scalar(
                    select(PrecacheHost.task_id).where(
                        PrecacheHost.job_id == job_id, PrecacheHost.host == seed
                    )
                )
                assert task_id
                queue.fail_pending(session, task_id, "Applying the task's result failed: boom")
        finally:
            database.dispose()
        monkeypatch.setattr(get_settings(), "precache_transfer_rate", 0)
        job = _finished(c, job_id, timeout=30)
        hosts = _by_host(job)
        (other,) = set(hosts) - {seed}
        assert hosts[other]["source"] == "origin"  # the new seed is the other host
        # its second task finds the first copy (which went on: see docs/precache.md) or copies again
        assert hosts[seed]["attempts"] == 2 and hosts[seed]["state"] in ("cached", "existing")
        assert job["state"] == "done"


def test_an_image_the_origin_cannot_serve_fails_on_every_host_at_once(
    cloud: Cloud, fleet: Fleet, tmp_path: Path
) -> None:
    """An image with no data (status queued): the first seed's report fails every row of the
    image; no rack is seeded again, no host retries."""
    _hosts(fleet, tmp_path, {"r1": ["pc-i1", "pc-i2"], "r2": ["pc-i3", "pc-i4"]})
    with cloud.client() as c:
        image = c.post(
            "/image/v2/images", json={"name": "empty", "disk_format": "raw", "container_format": "bare"}
        ).json()["id"]
        names = ["pc-i1", "pc-i2", "pc-i3", "pc-i4"]
        job_id = c.post(API, json={"image_ids": [image], "hosts": names}).json()["job_id"]
        job = _finished(c, job_id)
        assert job["state"] == "failed" and job["overall_status"] == "4 of 4 hosts done. 4 errors."
        assert {h["state"] for h in job["hosts"]} == {"error"}
        assert all("is not active" in h["error"] for h in job["hosts"])
        assert sum(h["attempts"] for h in job["hosts"]) <= 2  # at most the two racks' first seeds


def _reported(cloud: Cloud, host: str, image: str) -> None:
    """Wait until `host`'s agent has reported `image` among its cache's verified copies."""
    database = Database(cloud.settings.resolved_database_url)
    try:

        def held() -> bool:
            with database.read() as session:
                return image in service.holding(session, [host]).get(host, frozenset())

        wait_for(held, timeout=15)
    finally:
        database.dispose()


def test_a_host_already_holding_the_image_is_existing_from_the_start_and_seeds_its_rack(
    cloud: Cloud, fleet: Fleet, tmp_path: Path
) -> None:
    racks = {"r1": ["pc-j1", "pc-j2", "pc-j3"], "r2": ["pc-k1", "pc-k2"]}
    _hosts(fleet, tmp_path, racks)
    with cloud.client() as c:
        image = upload_image(c, content=os.urandom(SIZE))
        first = _finished(c, c.post(API, json={"image_ids": [image], "hosts": ["pc-j2"]}).json()["job_id"])
        assert _by_host(first)["pc-j2"]["state"] == "cached"
        _reported(cloud, "pc-j2", image)  # its agent reported the copy after it
        names = [h for hs in racks.values() for h in hs]
        before = time.time()
        job_id = c.post(API, json={"image_ids": [image], "hosts": names}).json()["job_id"]
        at_once = _by_host(c.get(f"{API}/{job_id}").json()["job"])
        holder = at_once["pc-j2"]
        assert (holder["state"], holder["bytes"], holder["attempts"], holder["source"]) == (
            "existing",
            0,
            0,
            None,
        )
        # its rack's peers copy from it at once: the rack takes no origin copy
        assert {at_once[h]["source"] for h in ("pc-j1", "pc-j3")} == {"peer:pc-j2"}
        job = _finished(c, job_id)
        hosts = _by_host(job)
        assert job["state"] == "done" and job["overall_status"] == "5 of 5 hosts done. 0 errors."
        assert hosts["pc-j2"]["state"] == "existing" and hosts["pc-j2"]["bytes"] == 0
        assert hosts["pc-j1"]["source"] == hosts["pc-j3"]["source"] == "peer:pc-j2"
        assert job["bytes_from_origin"] == SIZE  # one copy, for the other rack only
        assert [h for h in names if hosts[h]["source"] == "origin"] in (["pc-k1"], ["pc-k2"])
        assert job["bytes_from_peers"] == 3 * SIZE

        # its agent was asked to pin the copy again (a task with no source: nothing copied)
        def pinned() -> bool:
            (entry,) = c.get("/compute/v2.1/os-kumo-image-cache/pc-j2").json()["images"]
            return bool(entry["pinned_until"] >= before + get_settings().precache_pin_seconds)

        wait_for(pinned, timeout=10)


def test_a_stale_cache_report_is_harmless(cloud: Cloud, fleet: Fleet, tmp_path: Path) -> None:
    """A host reported holding the image but no longer does: it is `existing` from the start,
    its peers hear 404 from it (refused: missing), it is queued again, one of them falls back
    to the origin (its rack's one origin copy) and everyone ends with a verified copy."""
    _hosts(fleet, tmp_path, {"r1": ["pc-l1", "pc-l2", "pc-l3"]})
    with cloud.client() as c:
        image = upload_image(c, content=os.urandom(SIZE))
        _finished(c, c.post(API, json={"image_ids": [image], "hosts": ["pc-l1"]}).json()["job_id"])
        _reported(cloud, "pc-l1", image)
        for name in (image, f"{image}.json"):  # gone since its report (the next one would say so)
            (tmp_path / "caches" / "pc-l1" / name).unlink()
        job_id = c.post(API, json={"image_ids": [image], "hosts": ["pc-l1", "pc-l2", "pc-l3"]}).json()[
            "job_id"
        ]
        assert _by_host(c.get(f"{API}/{job_id}").json()["job"])["pc-l1"]["state"] == "existing"
        job = _finished(c, job_id)
        hosts = _by_host(job)
        assert job["state"] == "done" and job["total_errors"] == 0
        assert {h["state"] for h in hosts.values()} == {"cached"}
        assert job["bytes_from_origin"] == SIZE  # the rack's one origin copy
        # its peers' refusals (404: missing) or its own pin task (the copy is gone) requeued it,
        # whichever came first
        refusals = [r for h in hosts.values() for r in h["refused"]]
        assert all(r["peer"] == "pc-l1" and r["missing"] for r in refusals)
        assert hosts["pc-l1"]["attempts"] >= 1  # it copied the image itself
        for name in ("pc-l1", "pc-l2", "pc-l3"):
            assert (tmp_path / "caches" / name / image).stat().st_size == SIZE


def test_a_progress_report_of_an_earlier_attempt_is_stale(
    cloud: Cloud, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with cloud.client(microversion="2.53") as c:
        job_id, seed = _slow_seed_job(c, fleet, tmp_path, monkeypatch, ["pc-m1", "pc-m2"])
        image = c.get(f"{API}/{job_id}").json()["job"]["image_ids"][0]
        database = Database(cloud.settings.resolved_database_url)
        try:
            with database.transaction() as session:  # the row is in its second attempt now
                row = session.scalar(
                    select(PrecacheHost).where(PrecacheHost.job_id == job_id, PrecacheHost.host == seed)
                )
                assert row is not None and row.attempts == 1
                row.attempts = 2
        finally:
            database.dispose()
        headers = {AGENT_TOKEN_HEADER: cloud.settings.secret("agent_token")}
        body = {"job_id": job_id, "image_id": image, "host": seed, "source": "origin", "bytes": 7}
        url = f"{cloud.url}/internal/v1/precache/progress"
        stale = httpx.put(url, json={**body, "attempt": 1}, headers=headers)
        assert stale.status_code == 409, stale.text
        assert _by_host(c.get(f"{API}/{job_id}").json()["job"])[seed]["bytes"] != 7
        assert httpx.put(url, json={**body, "attempt": 2}, headers=headers).status_code == 204
        assert _by_host(c.get(f"{API}/{job_id}").json()["job"])[seed]["bytes"] == 7


def test_the_job_list_pages_with_limit_and_marker(cloud: Cloud, fleet: Fleet, tmp_path: Path) -> None:
    _hosts(fleet, tmp_path, {"r1": ["pc-n1"]})
    with cloud.client() as c:
        image = upload_image(c, content=os.urandom(1024))
        ids = [
            c.post(API, json={"image_ids": [image], "hosts": ["pc-n1"]}).json()["job_id"] for _ in range(3)
        ]
        newest_first = [j["job_id"] for j in c.get(API).json()["jobs"]]
        assert sorted(newest_first) == sorted(ids)
        page = c.get(API, params={"limit": 2}).json()
        assert [j["job_id"] for j in page["jobs"]] == newest_first[:2]
        (link,) = page["jobs_links"]
        assert (
            link["rel"] == "next"
            and f"marker={newest_first[1]}" in link["href"]
            and "limit=2" in link["href"]
        )
        rest = c.get(API, params={"limit": 2, "marker": newest_first[1]}).json()
        assert [j["job_id"] for j in rest["jobs"]] == newest_first[2:] and "jobs_links" not in rest
        by_image = c.get(API, params={"image_id": image, "limit": 1, "marker": newest_first[0]}).json()
        assert [j["job_id"] for j in by_image["jobs"]] == [newest_first[1]]
        assert len(c.get(API, params={"limit": 10**9}).json()["jobs"]) == 3  # capped at the maximum
        for bad in ({"limit": "x"}, {"limit": -1}, {"marker": "no-such-job"}):
            resp = c.get(API, params=bad)
            assert resp.status_code == 400, (bad, resp.text)
            assert resp.json()["badRequest"]["code"] == 400


def test_a_host_whose_own_copy_is_suspect_is_an_error_not_a_holder(
    cloud: Cloud, fleet: Fleet, tmp_path: Path
) -> None:
    """A copy found bad while instances use it is kept, suspect: the host neither reports it
    (not `existing` up front) nor serves it, and asked to precache it answers an error at once."""
    _hosts(fleet, tmp_path, {"r1": ["pc-o1"]})
    (agent,) = [a for a in fleet.agents if a.host == "pc-o1"]
    with cloud.client() as c:
        image = upload_image(c, content=os.urandom(SIZE))
        _finished(c, c.post(API, json={"image_ids": [image], "hosts": ["pc-o1"]}).json()["job_id"])
        copy = tmp_path / "caches" / "pc-o1" / image
        copy.chmod(0o644)
        copy.write_bytes(b"x" * SIZE)
        agent.image_cache.acquire(image, "instance-1")
        assert agent.image_cache.reverify(image) == (False, False)  # kept for its instance, suspect
        agent.report_image_cache()  # (its next report: within a minute)
        database = Database(cloud.settings.resolved_database_url)
        with database.read() as session:
            assert service.holding(session, ["pc-o1"]) == {"pc-o1": frozenset()}
        database.dispose()
        job = _finished(c, c.post(API, json={"image_ids": [image], "hosts": ["pc-o1"]}).json()["job_id"])
        (row,) = job["hosts"]
        assert (row["state"], row["attempts"]) == ("error", 1)
        assert "failed verification and is in use" in row["error"]
        assert job["bytes_from_origin"] == 0


def test_a_finished_job_runs_again_for_a_host_whose_reported_copy_is_gone(
    cloud: Cloud, fleet: Fleet, tmp_path: Path
) -> None:
    """The only host holds the image by its report: the job is done at its creation. Its pin
    task then finds the copy gone: the job runs again for it, and it copies the image."""
    _hosts(fleet, tmp_path, {"r1": ["pc-p1"]})
    with cloud.client() as c:
        image = upload_image(c, content=os.urandom(SIZE))
        _finished(c, c.post(API, json={"image_ids": [image], "hosts": ["pc-p1"]}).json()["job_id"])
        _reported(cloud, "pc-p1", image)
        for name in (image, f"{image}.json"):
            (tmp_path / "caches" / "pc-p1" / name).unlink()
        job_id = c.post(API, json={"image_ids": [image], "hosts": ["pc-p1"]}).json()["job_id"]

        def copied() -> dict[str, Any] | None:
            job: dict[str, Any] = c.get(f"{API}/{job_id}").json()["job"]
            return job if job["state"] == "done" and job["hosts"][0]["state"] == "cached" else None

        job = wait_for(copied, timeout=30)
        (row,) = job["hosts"]
        assert (row["source"], row["attempts"], row["error"]) == ("origin", 1, None)
        assert job["bytes_from_origin"] == SIZE
        assert (tmp_path / "caches" / "pc-p1" / image).stat().st_size == SIZE
