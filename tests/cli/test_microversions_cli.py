"""The unmodified `openstack` CLI at its default negotiation (the highest compute microversion it
and kumo both know): server tags, lock reasons, changes-before and image precaching, one walk.
The flavor, image and aggregate it uses are made through the API (no CLI call of their own)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.cli.conftest import OpenStackCLI
from tests.conftest import Cloud, Fleet
from tests.functional.compute.helpers import API

pytestmark = pytest.mark.cli


def test_microversioned_commands(cloud: Cloud, fleet: Fleet, osc: OpenStackCLI) -> None:
    fleet.add("mv-cli-h1")
    with cloud.client(microversion="2.96") as c:
        flavor = {"flavor": {"name": "mv-flavor", "vcpus": 1, "ram": 256, "disk": 1}}
        assert c.post(f"{API}/flavors", json=flavor).status_code == 200
        image = c.post(
            "/image/v2/images",
            json={
                "name": "mv-image",
                "disk_format": "raw",
                "container_format": "bare",
                "visibility": "public",
            },
        ).json()["id"]
        upload = c.put(
            f"/image/v2/images/{image}/file",
            content=b"x" * 1024,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert upload.status_code == 204
        assert c.post(f"{API}/os-aggregates", json={"aggregate": {"name": "mv-agg"}}).status_code == 200
    before_create = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)

    server = osc.run(
        "server", "create", "--flavor", "mv-flavor", "--image", "mv-image", "--nic", "none",
        "--tag", "blue", "--tag", "green", "--wait", "mv-server",
    )  # fmt: skip
    assert sorted(server["tags"]) == ["blue", "green"]
    osc.run("server", "set", "--tag", "red", "mv-server", json=False)
    osc.run("server", "unset", "--tag", "blue", "mv-server", json=False)
    assert [s["Name"] for s in osc.run("server", "list", "--tags", "red,green")] == ["mv-server"]

    osc.run("server", "lock", "--reason", "kernel upgrade", "mv-server", json=False)
    shown = osc.run("server", "show", "mv-server")
    assert shown["locked_reason"] == "kernel upgrade" and shown["locked"] is True
    assert sorted(shown["tags"]) == ["green", "red"]  # set and unset took effect

    assert osc.run("server", "list", "--changes-before", before_create.isoformat()) == []
    after = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)).isoformat()
    assert [s["Name"] for s in osc.run("server", "list", "--changes-before", after)] == ["mv-server"]

    osc.run("aggregate", "cache", "image", "mv-agg", image, json=False)
