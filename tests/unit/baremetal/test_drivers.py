"""BMC drivers: the fake driver through the shared interfaces, the console deploy (marker,
timeout, abort), the console log reader, and the Redfish driver's error boundary."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kumo.baremetal.drivers import fake as fake_driver
from kumo.baremetal.drivers.base import (
    BOOT_DISK,
    BOOT_PXE,
    POWER_OFF,
    POWER_ON,
    SOFT_POWER_OFF,
    BMCError,
    BMCUnreachable,
    DeployAborted,
    DeployRequest,
    DeployTimeout,
    Node,
    unlimited,
)
from kumo.baremetal.drivers.deploy import LogFileConsole
from kumo.baremetal.drivers.load import load_hardware


@pytest.fixture(autouse=True)
def _fresh_machines() -> Iterator[None]:
    fake_driver.forget_all()
    yield
    fake_driver.forget_all()


def fake_node(uuid: str = "n-1", **info: object) -> Node:
    return Node(uuid=uuid, driver="fake-hardware", driver_info=dict(info), name=f"node-{uuid}")


def test_fake_power_and_boot_device() -> None:
    hw = load_hardware(fake_node(), unlimited())
    assert hw.power.get_power_state() == POWER_OFF
    hw.power.set_power_state(POWER_ON)
    hw.power.set_power_state(POWER_ON)  # idempotent: one power-on
    assert hw.power.get_power_state() == POWER_ON
    assert fake_driver.machine("n-1").power_ons == 1
    hw.power.reboot()
    assert hw.power.get_power_state() == POWER_ON
    assert fake_driver.machine("n-1").power_ons == 2
    hw.power.set_power_state(SOFT_POWER_OFF)
    assert hw.power.get_power_state() == POWER_OFF
    hw.management.set_boot_device(BOOT_PXE, persistent=False)
    assert hw.management.get_boot_device() == BOOT_PXE
    with pytest.raises(BMCError, match="unsupported boot device"):
        hw.management.set_boot_device("floppy")


def test_deploy_boots_from_disk_and_waits_for_the_marker() -> None:
    hw = load_hardware(fake_node(fake_boot_seconds=0.3, fake_power_state=POWER_ON), unlimited())
    hw.management.set_boot_device(BOOT_PXE)
    started = time.monotonic()
    hw.deploy.deploy(DeployRequest(timeout=10), threading.Event())
    took = time.monotonic() - started
    m = fake_driver.machine("n-1")
    assert 0.3 <= took < 5
    assert (m.power, m.boot_device, m.boot_persistent) == (POWER_ON, BOOT_DISK, True)
    assert m.power_offs == 1 and m.power_ons == 1  # powered off first, then booted once
    assert "KUMO-BOOT-OK" in m.console_text()


def test_deploy_times_out_and_leaves_the_machine_off() -> None:
    hw = load_hardware(fake_node(fake_boots=False), unlimited())
    with pytest.raises(DeployTimeout, match=r"node node-n-1 .*no 'KUMO-BOOT-OK' on its console after 0.5 s"):
        hw.deploy.deploy(DeployRequest(timeout=0.5), threading.Event())
    assert fake_driver.machine("n-1").power == POWER_OFF


def test_deploy_stops_waiting_when_told() -> None:
    hw = load_hardware(fake_node(fake_boots=False), unlimited())
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(DeployAborted):
        hw.deploy.deploy(DeployRequest(timeout=30), stop)


def test_a_marker_from_an_earlier_boot_does_not_count(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text("KUMO-BOOT-OK old boot\n")
    console = LogFileConsole(log)
    mark = console.mark()
    assert console.read_since(mark) == ""
    with log.open("a") as f:
        f.write("booting\nKUMO-BOOT-OK new\n")
    assert console.read_since(mark) == "booting\nKUMO-BOOT-OK new\n"
    log.write_text("x\n")  # truncated (a new log): all of it is new
    assert console.read_since(mark) == "x\n"
    assert LogFileConsole(tmp_path / "absent.log").read_since(0) == ""


def test_tear_down_powers_off_and_boots_from_disk() -> None:
    hw = load_hardware(fake_node(fake_power_state=POWER_ON), unlimited())
    hw.management.set_boot_device(BOOT_PXE)
    hw.deploy.tear_down()
    m = fake_driver.machine("n-1")
    assert (m.power, m.boot_device) == (POWER_OFF, BOOT_DISK)


def test_unreachable_fake_bmc() -> None:
    hw = load_hardware(fake_node(fake_unreachable=True), unlimited())
    with pytest.raises(BMCUnreachable, match="unreachable"):
        hw.power.get_power_state()
    fake_driver.machine("n-1").unreachable = False
    assert hw.power.get_power_state() == POWER_OFF


def test_limiter_bounds_concurrent_calls() -> None:
    gate = threading.BoundedSemaphore(2)
    nodes = [fake_node(f"n-{i}", fake_latency=0.2) for i in range(6)]
    hws = [load_hardware(n, gate) for n in nodes]
    started = time.monotonic()
    threads = [threading.Thread(target=hw.power.get_power_state) for hw in hws]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started >= 0.6  # 6 calls of 0.2 s, 2 at a time


def test_unknown_driver() -> None:
    with pytest.raises(BMCError, match="unknown driver 'ipmi'"):
        load_hardware(Node(uuid="x", driver="ipmi"), unlimited())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_redfish_bmc_unreachable_is_a_clear_error() -> None:
    node = Node(
        uuid="r-1",
        driver="redfish",
        name="rack1-01",
        driver_info={"redfish_address": f"http://127.0.0.1:{_closed_port()}", "redfish_system_id": "abc"},
    )
    hw = load_hardware(node, unlimited())
    with pytest.raises(
        BMCUnreachable, match=r"Redfish BMC http://127.0.0.1:\d+ of node rack1-01 is unreachable"
    ):
        hw.power.get_power_state()


def test_redfish_needs_an_address() -> None:
    with pytest.raises(BMCError, match="no redfish_address"):
        load_hardware(Node(uuid="r-2", driver="redfish"), unlimited())
