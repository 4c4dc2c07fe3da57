"""stop/start, soft and hard reboot, rebuild and delete of a real guest, each checked from inside
the guest (its serial console, read through the API) and from libvirt."""

from __future__ import annotations

from kumo.agent.libvirt.domain import kumo_metadata
from tests.conftest import wait_for
from tests.integration.libvirt.conftest import (
    MARKER,
    GuestImage,
    Hypervisor,
    domain,
    domain_exists,
    is_active,
)

POWER_BUTTON = "KUMO-POWER-BUTTON"  # the guest's /init saw the ACPI power button: a clean shutdown


def test_stop_start_and_reboots(hv: Hypervisor) -> None:
    sid = hv.create("cycle")
    hv.wait_status(sid, "ACTIVE")
    hv.wait_console(sid, MARKER)

    hv.action(sid, {"os-stop": None})
    assert hv.wait_status(sid, "SHUTOFF")["OS-EXT-STS:power_state"] == 4
    assert not is_active(sid)
    assert hv.console(sid).count(POWER_BUTTON) == 1  # shut down cleanly, not pulled

    hv.action(sid, {"os-start": None})
    assert hv.wait_status(sid, "ACTIVE")["OS-EXT-STS:power_state"] == 1
    out = hv.wait_console(sid, MARKER, count=2)  # the same console log goes on across boots
    assert "boots=2" in out  # …and the same disk

    hv.action(sid, {"reboot": {"type": "SOFT"}})
    hv.wait_status(sid, "ACTIVE")
    out = hv.wait_console(sid, MARKER, count=3)
    assert out.count(POWER_BUTTON) == 2  # soft: the guest was asked first

    hv.action(sid, {"reboot": {"type": "HARD"}})
    hv.wait_status(sid, "ACTIVE")
    out = hv.wait_console(sid, MARKER, count=4)
    assert out.count(POWER_BUTTON) == 2  # hard: power cycled without asking
    assert "boots=4" in out
    assert is_active(sid)


def test_rebuild_onto_a_qcow2_image_then_delete_cleans_up(hv: Hypervisor, test_image: GuestImage) -> None:
    sid = hv.create("rebuilt")
    hv.wait_status(sid, "ACTIVE")
    hv.wait_console(sid, MARKER)
    qcow2_image = hv.upload_test_image(test_image, disk_format="qcow2", name="kumo-test-qcow2")

    hv.action(sid, {"rebuild": {"imageRef": qcow2_image}})
    server = hv.wait_status(sid, "ACTIVE")
    assert server["image"]["id"] == qcow2_image
    out = hv.wait_console(sid, MARKER, count=2)
    assert " boots=1 " in out.split(MARKER)[-1].splitlines()[0] + " "  # a fresh disk, not the old one
    assert kumo_metadata(domain(sid))["image"] == qcow2_image
    users = {entry["id"]: entry["instances"] for entry in hv.driver.cache.report()}
    assert users[qcow2_image] == [sid]
    assert users[hv.image_id] == []  # the old base is no longer referenced (kept until evicted)

    resp = hv.admin.delete(f"/compute/v2.1/servers/{sid}")
    assert resp.status_code == 204
    wait_for(lambda: hv.admin.get(f"/compute/v2.1/servers/{sid}").status_code == 404, timeout=30)
    assert not domain_exists(sid)
    assert not hv.driver.instance_dir(sid).exists()
    assert all(entry["instances"] == [] for entry in hv.driver.cache.report())
    assert hv.driver.cache.evict(max_age=0) != []  # unused bases can now go
