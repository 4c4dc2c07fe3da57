"""The libvirt driver's config drive: built in the instance's directory from the bundle the API
serves (through a fake link), absent when the spec asks for none, refused outside the directory."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from kumo.agent.drivers.base import DriverError
from kumo.agent.drivers.libvirt import LibvirtDriver
from kumo.agent.libvirt.config_drive import ApiConfigDrive, contained
from kumo.metadata import configdrive
from tests.unit.metadata.builders import USER_DATA, UUID, bundle


def _link(status: int = 200) -> tuple[httpx.Client, list[str]]:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if status != 200:
            return httpx.Response(status, json={"itemNotFound": {"code": status, "message": "no"}})
        return httpx.Response(200, content=bundle().model_dump_json().encode())

    client = httpx.Client(base_url="http://api/internal/v1", transport=httpx.MockTransport(handler))
    return client, asked


def test_a_drive_is_built_in_the_directory_from_the_bundle(tmp_path: Path) -> None:
    client, asked = _link()
    drive = ApiConfigDrive(client)({"uuid": UUID, "config_drive": "True"}, tmp_path)
    assert drive == tmp_path / "config.iso" and asked == [f"/internal/v1/instances/{UUID}/metadata"]
    found = configdrive.read(drive)
    assert found[""] == b"config-2" and found["openstack/latest/user_data"] == USER_DATA
    assert contained(UUID, drive, tmp_path) == drive.resolve()


def test_no_drive_is_asked_for_no_drive_is_built(tmp_path: Path) -> None:
    client, asked = _link()
    assert ApiConfigDrive(client)({"uuid": UUID, "config_drive": ""}, tmp_path) is None
    assert ApiConfigDrive(client)({"uuid": UUID, "config_drive_path": "/etc/shadow"}, tmp_path) is None
    assert asked == [] and contained(UUID, None, tmp_path) is None


@pytest.mark.parametrize("status", [404, 500])
def test_a_bundle_that_cannot_be_read_is_a_driver_error(tmp_path: Path, status: int) -> None:
    client, _asked = _link(status)
    with pytest.raises(DriverError, match=UUID):
        ApiConfigDrive(client)({"uuid": UUID, "config_drive": True}, tmp_path)
    assert not (tmp_path / "config.iso").exists()


def test_a_drive_outside_the_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "instances" / UUID
    directory.mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.write_bytes(b"host file")
    (directory / "link.iso").symlink_to(outside)
    for drive in (outside, directory / ".." / ".." / "secret", directory / "link.iso"):
        with pytest.raises(DriverError, match="outside its directory"):
            contained(UUID, drive, directory)
    with pytest.raises(DriverError, match="does not exist"):
        contained(UUID, directory / "config.iso", directory)


class _RecordingCache:
    def __init__(self) -> None:
        self.acquired: list[str] = []

    def acquire(self, image_ref: str, uuid: str) -> object:
        self.acquired.append(image_ref)
        raise AssertionError("an image was fetched for a spec that fails")


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"ports": [{"id": "p"}]}, "port"),
        ({"config_drive_path": "ignored", "escape": True}, "outside its directory"),
    ],
)
def test_the_driver_refuses_a_spec_before_fetching_its_image(
    tmp_path: Path, spec: dict[str, object], reason: str
) -> None:
    driver = LibvirtDriver.__new__(LibvirtDriver)  # no libvirtd: only the spec checks run
    driver.instances_dir = tmp_path
    driver.cache = _RecordingCache()  # type: ignore[assignment]
    driver.ensure_bridge = lambda bridge, mtu: None
    driver.config_drive = lambda instance, directory: (
        tmp_path / "elsewhere.iso" if instance.get("escape") else None
    )
    with pytest.raises(DriverError, match=reason):
        driver._guest_config({"uuid": UUID, **spec}, "image-1")
    assert driver.cache.acquired == []  # type: ignore[attr-defined]
