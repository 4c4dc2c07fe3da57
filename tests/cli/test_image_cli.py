"""The unmodified `openstack` CLI against kumo's image API."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.cli.conftest import DEMO_CLOUD, CLIError, OpenStackCLI

pytestmark = pytest.mark.cli


def test_image_create_list_show_save_set_delete(osc: OpenStackCLI, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "disk.raw"
    source.write_bytes(data)

    formats = ("--disk-format", "raw", "--container-format", "bare")
    created = osc.run("image", "create", "--file", str(source), *formats, "cirros")
    assert created["name"] == "cirros"
    assert created["status"] == "active"
    assert created["size"] == len(data)
    assert created["checksum"] == hashlib.md5(data).hexdigest()
    image_id = created["id"]

    listed = osc.run("image", "list")
    assert [(i["ID"], i["Name"], i["Status"]) for i in listed] == [(image_id, "cirros", "active")]

    shown = osc.run("image", "show", "cirros")
    assert shown["id"] == image_id
    assert shown["disk_format"] == "raw" and shown["container_format"] == "bare"
    assert shown["properties"]["os_hash_value"] == hashlib.sha512(data).hexdigest()

    out = tmp_path / "out.raw"
    osc.run("image", "save", "--file", str(out), image_id, json=False)
    assert out.read_bytes() == data

    osc.run("image", "set", "--property", "os_distro=cirros", "--name", "cirros-0.6", image_id, json=False)
    shown = osc.run("image", "show", image_id)
    assert shown["name"] == "cirros-0.6"
    assert shown["properties"]["os_distro"] == "cirros"

    osc.run("image", "delete", image_id, json=False)
    assert osc.run("image", "list") == []
    with pytest.raises(CLIError):
        osc.run("image", "show", image_id)


def test_non_admin_sees_public_but_not_private_images(osc: OpenStackCLI, tmp_path: Path) -> None:
    source = tmp_path / "tiny.raw"
    source.write_bytes(b"tiny image")
    common = ("--file", str(source), "--disk-format", "raw", "--container-format", "bare")
    public = osc.run("image", "create", *common, "--public", "pub")
    osc.run("image", "create", *common, "--private", "priv")

    assert [i["Name"] for i in osc.run("image", "list", cloud=DEMO_CLOUD)] == ["pub"]
    assert osc.run("image", "show", public["id"], cloud=DEMO_CLOUD)["visibility"] == "public"
    with pytest.raises(CLIError) as denied:
        osc.run("image", "create", *common, "--public", "mine", cloud=DEMO_CLOUD)
    assert "403" in denied.value.stderr


def test_image_members_through_the_cli(osc: OpenStackCLI) -> None:
    """`image add project`, `image member list`, `image set --accept/--reject`,
    `image list --member-status`, `image remove project`: the owner shares, the member decides."""
    image = osc.run(
        "image", "create", "--shared", "--disk-format", "raw", "--container-format", "bare", "gift"
    )
    demo_project = osc.run("project", "show", "demo")["id"]

    added = osc.run("image", "add", "project", image["id"], "demo")
    assert added["member_id"] == demo_project and added["status"] == "pending"
    assert [i["ID"] for i in osc.run("image", "list", cloud=DEMO_CLOUD)] == []
    pending = osc.run("image", "list", "--member-status", "pending", cloud=DEMO_CLOUD)
    assert [i["ID"] for i in pending] == [image["id"]]

    osc.run("image", "set", "--accept", image["id"], json=False, cloud=DEMO_CLOUD)
    members = osc.run("image", "member", "list", image["id"])
    assert [(m["Member ID"], m["Status"]) for m in members] == [(demo_project, "accepted")]
    assert [i["ID"] for i in osc.run("image", "list", cloud=DEMO_CLOUD)] == [image["id"]]
    assert osc.run("image", "show", image["id"], cloud=DEMO_CLOUD)["name"] == "gift"

    # Only the owner adds members: the CLI shows Glance's message, not a crash.
    with pytest.raises(CLIError) as refused:
        osc.run("image", "add", "project", image["id"], "admin", cloud=DEMO_CLOUD)
    assert "You are not permitted to add members" in refused.value.stderr
    assert "Traceback" not in refused.value.stderr

    osc.run("image", "set", "--reject", image["id"], json=False, cloud=DEMO_CLOUD)
    assert [i["ID"] for i in osc.run("image", "list", cloud=DEMO_CLOUD)] == []
    osc.run("image", "remove", "project", image["id"], "demo", json=False)
    assert osc.run("image", "member", "list", image["id"]) == []


def test_a_glance_error_reaches_the_cli_as_its_message(osc: OpenStackCLI) -> None:
    private = osc.run("image", "create", "--private", "secret")
    with pytest.raises(CLIError) as refused:
        osc.run("image", "member", "list", private["id"])
    assert "Private images do not have members." in refused.value.stderr
    assert "Traceback" not in refused.value.stderr and "has no attribute" not in refused.value.stderr
