"""The config drive, read back from the ISO: its label, Nova's layout, the same documents as the
metadata service, and cloud-init's ConfigDrive reader reading it."""

from __future__ import annotations

import json
from pathlib import Path

from kumo.metadata import configdrive, render
from kumo.metadata.render import OPENSTACK_VERSIONS
from tests.unit.metadata.builders import KEY, USER_DATA, bundle
from tests.unit.metadata.cloudinit import cloudinit

SEED = b"\x07" * 512


def test_the_drive_holds_every_version_labelled_config_2(tmp_path: Path) -> None:
    iso = configdrive.build(bundle(), tmp_path / "disk.config", random_seed=SEED)
    found = configdrive.read(iso)
    assert found.pop("") == b"config-2"
    assert found == configdrive.files(bundle(), random_seed=SEED)
    for version in (*OPENSTACK_VERSIONS, "latest"):
        body = render.render(bundle(), f"/openstack/{version}/meta_data.json", SEED).body
        assert found[f"openstack/{version}/meta_data.json"] == body
    assert found["openstack/latest/user_data"] == USER_DATA
    assert found["ec2/latest/user-data"] == USER_DATA
    ec2 = json.loads(found["ec2/2009-04-04/meta-data.json"])
    assert ec2["public-keys"]["0"]["openssh-key"] == KEY and ec2["instance-id"] == "i-0000002a"
    assert not (tmp_path / "disk.config.part").exists()


def test_cloud_init_reads_the_drive(tmp_path: Path) -> None:
    openstack = cloudinit("cloudinit.sources.helpers.openstack")
    iso = configdrive.build(bundle(), tmp_path / "disk.config")
    mounted = tmp_path / "mnt"
    for path, content in configdrive.read(iso).items():
        if path:
            (mounted / path).parent.mkdir(parents=True, exist_ok=True)
            (mounted / path).write_bytes(content)
    results = openstack.ConfigDriveReader(str(mounted)).read_v2()
    assert results["version"] == 2
    assert results["metadata"]["uuid"] == bundle().uuid
    assert results["metadata"]["public_keys"] == {"demo": KEY}
    assert results["userdata"] == USER_DATA
    assert results["networkdata"]["links"][0]["ethernet_mac_address"] == "fa:16:3e:12:34:56"
    assert results["ec2-metadata"]["local-ipv4"] == "10.0.0.5"


def test_a_server_without_user_data_has_none_on_its_drive(tmp_path: Path) -> None:
    found = configdrive.read(configdrive.build(bundle(user_data_b64=None), tmp_path / "d.iso"))
    assert not [path for path in found if path.endswith(("user_data", "user-data"))]
    assert "openstack/latest/meta_data.json" in found


def test_the_admin_pass_is_on_the_drive_and_cloud_init_reads_it(tmp_path: Path) -> None:
    openstack = cloudinit("cloudinit.sources.helpers.openstack")
    iso = configdrive.build(bundle(admin_pass="pw-drive"), tmp_path / "disk.config")
    mounted = tmp_path / "mnt"
    for path, content in configdrive.read(iso).items():
        if path:
            (mounted / path).parent.mkdir(parents=True, exist_ok=True)
            (mounted / path).write_bytes(content)
    assert openstack.ConfigDriveReader(str(mounted)).read_v2()["metadata"]["admin_pass"] == "pw-drive"
