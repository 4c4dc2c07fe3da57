"""Day-2 actions on one real guest, in sequence: pause/unpause, suspend/resume (libvirt managed
save), rescue/unrescue, resize to more memory and confirm; each checked from inside the guest
(its serial console: the boot marker, its boot counter kept on the root disk, MemTotal, the
5-second ticks, the rescue kernel naming both disks, the kernel's NMI message) and from
libvirt (paused state, the managed save image, the rescue definition, diagnostics)."""

from __future__ import annotations

import re

from tests.conftest import wait_for
from tests.integration.libvirt.conftest import (
    COMPUTE,
    MARKER,
    GuestImage,
    Hypervisor,
    _domain,
    domain,
    in_whole_lines,
    upload,
)

TICK = "KUMO-TICK"


def _last_boot(out: str) -> str:
    """The last boot marker line of a console log."""
    return out.split(MARKER)[-1].splitlines()[0]


def _ticks(out: str) -> list[float]:
    return [float(m) for m in re.findall(rf"{TICK} ([0-9.]+)\n", out)]


def test_pause_suspend_rescue_and_resize_one_guest(hv: Hypervisor, test_image: GuestImage) -> None:
    sid = hv.create("day2")
    hv.wait_status(sid, "ACTIVE")
    out = hv.wait_console(sid, MARKER)
    assert " boots=1 " in _last_boot(out) + " "
    first_mem = int(re.search(r"mem_kb=(\d+)", _last_boot(out)).group(1))  # type: ignore[union-attr]

    # pause: the guest's vCPUs stop (libvirt says paused); unpause: it runs on, not rebooted
    hv.action(sid, {"pause": None})
    assert hv.wait_status(sid, "PAUSED")["OS-EXT-STS:power_state"] == 3
    assert _domain(sid).state()[0] == 3  # VIR_DOMAIN_PAUSED
    hv.action(sid, {"unpause": None})
    assert hv.wait_status(sid, "ACTIVE")["OS-EXT-STS:power_state"] == 1
    assert _domain(sid).state()[0] == 1  # running again (its ticks go on: checked after resume)

    # suspend: memory saved by libvirt (managed save), the domain stopped; resume restores it
    before = max(_ticks(hv.console(sid)), default=0.0)
    hv.action(sid, {"suspend": None})
    assert hv.wait_status(sid, "SUSPENDED", timeout=120)["OS-EXT-STS:power_state"] == 7
    dom = _domain(sid)
    assert not dom.isActive() and dom.hasManagedSaveImage(0) == 1
    hv.action(sid, {"resume": None})
    assert hv.wait_status(sid, "ACTIVE", timeout=120)["OS-EXT-STS:power_state"] == 1
    assert _domain(sid).hasManagedSaveImage(0) == 0
    out = wait_for(
        lambda: max(_ticks(o := hv.console(sid)), default=0.0) > before and o, timeout=30, interval=0.5
    )
    assert in_whole_lines(out, MARKER) == 1  # the same boot went on (paused, saved, restored)

    # rescue from a rescue image whose kernel is not quiet: a fresh disk of it boots (its boot
    # counter starts again) and its kernel names the server's own disk, attached second (vdb);
    # unrescue: the server's own disk boots, its counter kept
    rescue_image = upload(
        hv.admin,
        "kumo-test-rescue",
        test_image.disk_raw,
        "raw",
        kernel_id=hv.kernel_id,
        ramdisk_id=hv.ramdisk_id,
        os_command_line=test_image.cmdline.replace("quiet", "").strip(),
    )
    resp = hv.action(sid, {"rescue": {"adminPass": "rescue-pw", "rescue_image_ref": rescue_image}})
    assert resp.json() == {"adminPass": "rescue-pw"}
    hv.wait_status(sid, "RESCUE", timeout=120)
    out = hv.wait_console(sid, MARKER, count=2, timeout=120)
    assert " boots=1 " in _last_boot(out) + " "  # not the server's disk (that says 2 next)
    rescue_boot = out.split(MARKER)[-2]
    assert "[vda]" in rescue_boot and "[vdb]" in rescue_boot  # the guest's kernel sees both
    xml = domain(sid)
    own = str(hv.driver.instance_dir(sid) / "disk")
    assert re.search(
        rf"<source file=['\"]{re.escape(own)}['\"][^>]*/>\s*(<[^>]+>\s*)*<target dev=['\"]vdb", xml
    )
    assert "disk.rescue" in xml
    hv.action(sid, {"unrescue": None})
    hv.wait_status(sid, "ACTIVE", timeout=120)
    out = hv.wait_console(sid, MARKER, count=3, timeout=120)
    assert " boots=2 " in _last_boot(out) + " "
    assert "disk.rescue" not in domain(sid)

    # resize to a flavor with more memory (on its own host: the one hypervisor), then confirm
    resp = hv.admin.post(
        f"{COMPUTE}/flavors", json={"flavor": {"name": f"more-{hv.host}", "vcpus": 1, "ram": 256, "disk": 1}}
    )
    assert resp.status_code == 200, resp.text
    more = resp.json()["flavor"]["id"]
    hv.action(sid, {"resize": {"flavorRef": more}})
    resized = hv.wait_status(sid, "VERIFY_RESIZE", timeout=120)
    assert resized["flavor"]["id"] == more
    out = hv.wait_console(sid, MARKER, count=4, timeout=120)
    mem = int(re.search(r"mem_kb=(\d+)", _last_boot(out)).group(1))  # type: ignore[union-attr]
    assert mem > first_mem + 100_000  # ~128 MiB more for the guest
    assert " boots=3 " in _last_boot(out) + " "  # its own disk still
    hv.action(sid, {"confirmResize": None})
    assert hv.wait_status(sid, "ACTIVE")["flavor"]["id"] == more
    assert "<memory unit='KiB'>262144</memory>" in domain(sid)

    # diagnostics (2.48): libvirt's own view of the guest
    resp = hv.admin.get(
        f"{COMPUTE}/servers/{sid}/diagnostics", headers={"OpenStack-API-Version": "compute 2.48"}
    )
    assert resp.status_code == 200, resp.text
    diagnostics = resp.json()
    assert (diagnostics["driver"], diagnostics["state"], diagnostics["num_cpus"]) == ("libvirt", "running", 1)
    assert diagnostics["memory_details"]["maximum"] == 256 and diagnostics["num_disks"] == 1
    assert diagnostics["disk_details"][0]["read_bytes"] > 0  # it booted from that disk

    # trigger_crash_dump (2.17): an NMI reaches the guest's kernel, which says so on its console
    resp = hv.admin.post(
        f"{COMPUTE}/servers/{sid}/action",
        json={"trigger_crash_dump": None},
        headers={"OpenStack-API-Version": "compute 2.17"},
    )
    assert resp.status_code == 202, resp.text
    wait_for(lambda: "NMI" in hv.console(sid), timeout=30, interval=0.5)
