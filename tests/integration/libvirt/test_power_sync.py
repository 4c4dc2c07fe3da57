"""kumo learns what happens to guests behind its back: libvirt's lifecycle events reach the API
at once, and the periodic sync is one libvirt call that starts no process (so is the CPU steal
sample of the rebalancer's signal, whose counters never go back)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Cloud
from tests.integration.libvirt.conftest import MARKER, GuestImage, _domain, start_hypervisor, stop_hypervisor


def test_guest_that_powers_itself_off_shows_shutoff_through_events(
    cloud: Cloud, tmp_path: Path, test_image: GuestImage
) -> None:
    # The agent's periodic sync is 10 minutes away: only events can explain a quick SHUTOFF.
    hv = start_hypervisor(cloud, tmp_path / "host", sync_interval=600)
    try:
        hv.image_id = hv.upload_test_image(test_image)
        sid = hv.create("self-stop")
        hv.wait_status(sid, "ACTIVE")
        hv.wait_console(sid, MARKER)

        # The guest powers off (ACPI button pressed outside kumo; its /init calls poweroff).
        subprocess.run(["virsh", "-c", "qemu:///system", "shutdown", sid], check=True, capture_output=True)
        started = time.monotonic()
        server = hv.wait_status(sid, "SHUTOFF", timeout=20)
        assert server["OS-EXT-STS:power_state"] == 4
        assert time.monotonic() - started < 15

        # Started again through kumo, then killed from outside: SHUTOFF again.
        hv.action(sid, {"os-start": None})
        hv.wait_status(sid, "ACTIVE")
        _domain(sid).destroy()
        hv.wait_status(sid, "SHUTOFF", timeout=20)
    finally:
        stop_hypervisor(hv)


def test_periodic_sync_is_one_call_without_processes(
    cloud: Cloud, tmp_path: Path, test_image: GuestImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    hv = start_hypervisor(cloud, tmp_path / "host")
    try:
        hv.image_id = hv.upload_test_image(test_image)
        sids = [hv.create(f"sync-{i}") for i in range(2)]
        for sid in sids:
            hv.wait_status(sid, "ACTIVE")

        def no_process(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("the power sync started a process")

        monkeypatch.setattr(subprocess.Popen, "__init__", no_process)
        states = hv.driver.power_states()
        first = hv.driver.cpu_stats()  # the rebalancer's CPU signal: one call too
        time.sleep(0.5)
        second = hv.driver.cpu_stats()
        monkeypatch.undo()
        assert {sid: states.get(sid) for sid in sids} == {sid: 1 for sid in sids}
        # Every guest's per-vCPU run and delay (vcpu.N.time, vcpu.N.delay), never going back.
        for sid in sids:
            before, after = first.guests[sid], second.guests[sid]
            assert before.vcpus == after.vcpus == 1
            assert after.time_ns >= before.time_ns > 0
            assert after.delay_ns >= before.delay_ns
        assert second.at > first.at and second.cores >= 1
    finally:
        stop_hypervisor(hv)
