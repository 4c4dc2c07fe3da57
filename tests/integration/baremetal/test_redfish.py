"""The Redfish driver through the real `sushy` client against sushy-tools' emulator, whose
systems are libvirt domains booting kumo's test image: power, boot device, a deploy that
completes when the machine prints its marker, a deploy that times out, a BMC that stops
answering, and one concurrent power-sync pass."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from kumo.baremetal.conductor import power_sync_pass
from kumo.baremetal.drivers.base import (
    BOOT_CDROM,
    BOOT_DISK,
    POWER_OFF,
    POWER_ON,
    SOFT_POWER_OFF,
    BMCUnreachable,
    DeployRequest,
    DeployTimeout,
)
from kumo.baremetal.drivers.load import load_hardware
from kumo.baremetal.drivers.redfish import forget_clients
from kumo.baremetal.lab import Emulator
from tests.integration.baremetal.conftest import MARKER, Lab, free_port


def test_power_and_boot_device(bm: Lab) -> None:
    hw = bm.hardware("node-1")
    assert hw.power.get_power_state() == POWER_OFF
    hw.management.set_boot_device(BOOT_CDROM, persistent=True)
    assert hw.management.get_boot_device() == BOOT_CDROM
    hw.management.set_boot_device(BOOT_DISK, persistent=True)
    assert hw.management.get_boot_device() == BOOT_DISK
    hw.power.set_power_state(POWER_ON)
    assert hw.power.get_power_state() == POWER_ON
    assert bm.domstate("node-1") == "running"
    hw.power.set_power_state(POWER_OFF)
    assert hw.power.get_power_state() == POWER_OFF
    assert bm.domstate("node-1") == "shut off"


def test_deploy_completes_when_the_machine_prints_its_marker(bm: Lab) -> None:
    hw = bm.hardware("node-2")
    hw.management.set_boot_device(BOOT_CDROM, persistent=True)
    before = bm.console("node-2").count(MARKER)
    started = time.monotonic()
    hw.deploy.deploy(DeployRequest(timeout=60), threading.Event())
    took = time.monotonic() - started
    assert bm.console("node-2").count(MARKER) == before + 1
    assert f"{MARKER} node-2" in bm.console("node-2")
    assert hw.power.get_power_state() == POWER_ON
    assert hw.management.get_boot_device() == BOOT_DISK
    assert took < 60
    # A soft power off reaches the guest (ACPI power button), then tear down cleans.
    hw.power.set_power_state(SOFT_POWER_OFF, timeout=30)
    assert bm.domstate("node-2") == "shut off"
    hw.deploy.tear_down()
    assert hw.power.get_power_state() == POWER_OFF


def test_deploy_timeout_is_an_error_and_leaves_the_machine_off(bm: Lab) -> None:
    hw = bm.hardware("node-3", kumo_deploy_marker="KUMO-NEVER-PRINTED")
    with pytest.raises(DeployTimeout, match="node-3.*no 'KUMO-NEVER-PRINTED' on its console after 3 s"):
        hw.deploy.deploy(DeployRequest(timeout=3), threading.Event())
    assert bm.domstate("node-3") == "shut off"


def test_a_bmc_that_stops_answering(bm: Lab) -> None:
    emulator = Emulator([bm.machine("node-1")], free_port(), bm.emulator.state_dir).start()
    node = bm.node("node-1", redfish_address=emulator.url)
    hw = load_hardware(node, threading.BoundedSemaphore(2))
    assert hw.power.get_power_state() == POWER_OFF
    emulator.stop()
    forget_clients()
    with pytest.raises(BMCUnreachable, match=f"Redfish BMC {emulator.url} of node node-1 is unreachable"):
        hw.power.set_power_state(POWER_ON)
    assert bm.domstate("node-1") == "shut off"


def test_power_sync_pass_over_the_emulator(bm: Lab) -> None:
    bm.hardware("node-1").power.set_power_state(POWER_ON)
    nodes = [bm.node(name) for name in ("node-1", "node-2", "node-3")]
    gate = threading.BoundedSemaphore(4)
    with ThreadPoolExecutor(4) as pool:
        result = power_sync_pass(nodes, lambda n: load_hardware(n, gate), pool)
    assert result.states == {nodes[0].uuid: POWER_ON, nodes[1].uuid: POWER_OFF, nodes[2].uuid: POWER_OFF}
