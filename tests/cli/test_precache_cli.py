"""`openstack aggregate cache image` (compute 2.81) through the unmodified CLI starts a precache
job on the aggregate's hosts; the job is then read over the os-kumo-image-precache extension."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli.conftest import OpenStackCLI
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.helpers import upload_image

pytestmark = pytest.mark.cli
COMPUTE = ("--os-compute-api-version", "2.81")
API = "/compute/v2.1/os-kumo-image-precache"
SIZE = 512 * 1024


def test_aggregate_cache_image(cloud: Cloud, fleet: Fleet, osc: OpenStackCLI, tmp_path: Path) -> None:
    hosts = {"cli-pc-a1": "r1", "cli-pc-a2": "r1", "cli-pc-b1": "r2"}
    for name, rack in hosts.items():
        fleet.add(name, rack=rack, image_cache=tmp_path / name)
    with cloud.client() as c:
        image = upload_image(c, content=os.urandom(SIZE))
        agg = c.post("/compute/v2.1/os-aggregates", json={"aggregate": {"name": "cli-pc-agg"}})
        for name in hosts:  # set up over HTTP: the CLI is the proof of `cache image` only
            c.post(
                f"/compute/v2.1/os-aggregates/{agg.json()['aggregate']['id']}/action",
                json={"add_host": {"host": name}},
            )
        osc.run(*COMPUTE, "aggregate", "cache", "image", "cli-pc-agg", image, json=False)

        def finished() -> dict[str, object] | None:
            jobs = c.get(API, params={"image_id": image}).json()["jobs"]
            return jobs[0] if jobs and jobs[0]["state"] != "running" else None

        job = wait_for(finished, timeout=30)
        assert job["state"] == "done"
        assert job["overall_status"] == "3 of 3 hosts done. 0 errors."
        assert job["bytes_from_origin"] == 2 * SIZE  # two racks, one origin copy each
        sources = {h["host"]: h["source"] for h in job["hosts"]}  # type: ignore[attr-defined]
        assert sources["cli-pc-b1"] == "origin"
        assert sorted(sources[h] for h in ("cli-pc-a1", "cli-pc-a2")) == [
            "origin",
            "peer:cli-pc-a1" if sources["cli-pc-a1"] == "origin" else "peer:cli-pc-a2",
        ]
        for name in hosts:
            assert (tmp_path / name / image).stat().st_size == SIZE
