"""The host image cache with real guests: one download per image per host, however many guests
boot from it at once, and never a guest on corrupt or partial data."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.integration.libvirt.conftest import MARKER, Hypervisor

DOWNLOAD_LOG = "downloaded by an agent"  # the image API's line for each download it serves


def downloads(caplog: pytest.LogCaptureFixture, image_id: str) -> int:
    return sum(1 for r in caplog.records if DOWNLOAD_LOG in r.getMessage() and image_id in r.getMessage())


def test_two_guests_from_one_image_cause_one_download(
    hv: Hypervisor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kumo.api")
    first, second = hv.create("twin-1"), hv.create("twin-2")  # concurrent boots: single flight
    for sid in (first, second):
        hv.wait_status(sid, "ACTIVE")
        hv.wait_console(sid, MARKER)
    third = hv.create("twin-3")  # a warm cache
    hv.wait_status(third, "ACTIVE")

    for image_id in (hv.image_id, hv.kernel_id, hv.ramdisk_id):
        assert downloads(caplog, image_id) == 1, image_id
    # The cache report, through the API (kumo extension; the agent answers it now).
    resp = hv.admin.get(f"/compute/v2.1/os-kumo-image-cache/{hv.host}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["host"] == hv.host
    report = {entry["id"]: entry for entry in resp.json()["images"]}
    assert set(report) == {hv.image_id, hv.kernel_id, hv.ramdisk_id}
    assert report[hv.image_id]["downloads"] == 1
    assert report[hv.image_id]["instances"] == sorted([first, second, third])
    # Instances' data never lands in the cache: each has its own overlay over the shared base.
    assert not any(p.name.endswith(("disk", ".qcow2")) for p in hv.driver.cache.root.iterdir())
    for sid in (first, second, third):
        assert (hv.driver.instance_dir(sid) / "disk").is_file()


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_a_corrupt_or_partial_download_is_never_used(hv: Hypervisor, damage: str) -> None:
    stored = Path(hv.cloud.settings.resolved_image_dir) / hv.image_id
    good = stored.read_bytes()
    flipped = good[:100] + bytes([good[100] ^ 0xFF]) + good[101:]
    bad = flipped if damage == "corrupt" else good[: len(good) // 2]
    stored.write_bytes(bad)  # the image service now serves data that does not match os_hash_value

    sid = hv.create("poisoned")
    server = hv.wait_status(sid, "ERROR")
    assert hv.image_id in server["fault"]["message"]
    assert "verification" in server["fault"]["message"] or "bytes" in server["fault"]["message"]
    cache = hv.driver.cache
    assert hv.image_id not in {entry["id"] for entry in cache.report()}
    assert not (cache.root / hv.image_id).exists()
    assert not list(cache.root.glob(".*.part"))

    stored.write_bytes(good)  # repaired at the source: the next boot downloads and verifies again
    sid = hv.create("healthy")
    hv.wait_status(sid, "ACTIVE")
    hv.wait_console(sid, MARKER)
