"""The unmodified `openstack` CLI at its default negotiation (the highest compute microversion it
and kumo both know): server tags, lock reasons, changes-before and image precaching, one walk."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.cli.conftest import OpenStackCLI
from tests.conftest import Cloud, Fleet

pytestmark = pytest.mark.cli


def test_microversioned_commands(cloud: Cloud, fleet: Fleet, osc: OpenStackCLI, tmp_path: Path) -> None:
    fleet.add("mv-cli-h1")
    osc.run("flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "mv-flavor", json=False)
    image_file = tmp_path / "img.raw"
    image_file.write_bytes(b"x" * 1024)
    image = osc.run("image", "create", "--file", str(image_file), "--disk-format", "raw", "mv-image")
    before_create = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)

    server = osc.run(
        "server", "create", "--flavor", "mv-flavor", "--image", "mv-image", "--nic", "none",
        "--tag", "blue", "--tag", "green", "--wait", "mv-server",
    )  # fmt: skip
    assert sorted(server["tags"]) == ["blue", "green"]
    osc.run("server", "set", "--tag", "red", "mv-server", json=False)
    osc.run("server", "unset", "--tag", "blue", "mv-server", json=False)
    listed = osc.run("server", "list", "--tags", "red,green")
    assert [s["Name"] for s in listed] == ["mv-server"]
    assert osc.run("server", "list", "--tags", "blue") == []

    osc.run("server", "lock", "--reason", "kernel upgrade", "mv-server", json=False)
    shown = osc.run("server", "show", "mv-server")
    assert shown["locked_reason"] == "kernel upgrade" and shown["locked"] is True
    assert sorted(shown["tags"]) == ["green", "red"]

    changed = osc.run("server", "list", "--changes-before", before_create.isoformat())
    assert changed == []  # every change of mv-server came after
    now = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)).isoformat()
    assert [s["Name"] for s in osc.run("server", "list", "--changes-before", now)] == ["mv-server"]

    osc.run("aggregate", "create", "mv-agg", json=False)
    osc.run("aggregate", "cache", "image", "mv-agg", image["id"], json=False)
