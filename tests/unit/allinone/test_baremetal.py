"""`kumo up`'s baremetal (kumo/baremetal/allinone.py): which BMC driver its nodes get and why,
the flavor of their resource class, the banner's baremetal commands, and a start that fails
stopping what it started (conductor, emulator) before the error goes on."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kumo import allinone
from kumo.baremetal import allinone as bm
from kumo.baremetal.conductor import console_output
from kumo.baremetal.drivers import fake
from kumo.baremetal.drivers.base import POWER_ON, Node
from kumo.config import Settings


def test_redfish_where_real_guests_run_and_sushy_tools_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bm, "emulator_binary", lambda: Path("/venv/bin/sushy-emulator"))
    monkeypatch.setattr(bm.importlib.util, "find_spec", lambda name: object())
    assert bm.choose_hardware(real_guests=True) == (
        bm.REDFISH,
        "Redfish: sushy-tools' emulator over libvirt machines",
    )


def test_the_fake_bmc_driver_otherwise_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bm, "emulator_binary", lambda: None)
    assert bm.choose_hardware(real_guests=False)[0] == bm.FAKE
    hardware, why = bm.choose_hardware(real_guests=True)
    assert hardware == bm.FAKE
    assert why == "fake BMC driver: sushy-tools is not installed (scripts/sushy-emulator setup)"


def test_nodes_span_two_racks_with_one_resource_class() -> None:
    bodies = [bm.node_body(name, rack, bm.FAKE, {}) for name, rack in bm.NODES]
    assert 3 <= len(bodies) <= 4
    assert {b["properties"]["rack"] for b in bodies} == {"rack-1", "rack-2"}
    assert {b["resource_class"] for b in bodies} == {bm.RESOURCE_CLASS}


def test_the_flavor_asks_for_one_node_of_the_class_and_nothing_else() -> None:
    assert bm.flavor_extra_specs() == {
        "resources:CUSTOM_BAREMETAL_SMALL": "1",
        "resources:VCPU": "0",
        "resources:MEMORY_MB": "0",
        "resources:DISK_GB": "0",
    }


def test_the_banner_names_one_baremetal_journey() -> None:
    lines = allinone.next_commands(Path("/s/clouds.yaml"), "m1.tiny", "demo-image", False, baremetal=True)
    demo = "openstack --os-cloud kumo-demo"
    assert lines[-3:] == [
        "openstack --os-cloud kumo baremetal node list --fields name resource_class provision_state",
        f"{demo} server create --flavor bm.small --image demo-image --nic none --wait my-metal",
        f"{demo} console log show my-metal",
    ]
    without = allinone.next_commands(Path("/s/clouds.yaml"), "m1.tiny", "demo-image", False)
    assert not any("baremetal" in line or "my-metal" in line for line in without)


def test_a_nodes_console_answer_is_its_machines_serial_console_tail() -> None:
    fake.forget_all()
    node = Node(
        uuid="11111111-2222-3333-4444-555555555555",
        driver="fake-hardware",
        driver_info={"fake_boot_seconds": "0"},
    )
    hw = fake.hardware(node, threading.BoundedSemaphore(1))
    hw.power.set_power_state(POWER_ON)
    whole = console_output(hw, None)
    assert whole.splitlines() == [
        "fake firmware: booting from disk",
        f"KUMO-BOOT-OK {node.uuid} boots=1",
    ]
    # Nova's _tail_log: the empty part after the last newline is the last "line"
    assert console_output(hw, 1) == ""
    assert console_output(hw, 2) == f"KUMO-BOOT-OK {node.uuid} boots=1\n"
    assert console_output(hw, 0) == ""
    fake.forget_all()


class Lab:
    """A started baremetal lab standing in for bm.Baremetal: records that it was stopped."""

    def __init__(self) -> None:
        self.stopped = 0

    def stop(self) -> None:
        self.stopped += 1


def test_a_baremetal_start_that_fails_stops_its_conductor_and_emulator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab = Lab()
    monkeypatch.setattr(bm, "choose_hardware", lambda real: (bm.FAKE, "test"))
    monkeypatch.setattr(bm, "start", lambda *args: lab)

    def refuse(admin: object) -> None:
        raise RuntimeError("the flavor could not be made")

    monkeypatch.setattr(bm, "ensure_flavor", refuse)
    settings = Settings(state_dir=tmp_path)
    with pytest.raises(RuntimeError, match="flavor"):
        allinone.start_baremetal("http://x", "tok", object(), settings, False, None)  # type: ignore[arg-type]
    assert lab.stopped == 1


def test_started_or_stopped_undoes_the_start_on_any_error_and_not_otherwise() -> None:
    undone: list[str] = []
    assert allinone.started_or_stopped(lambda: 7, lambda: undone.append("stop")) == 7
    assert undone == []

    def interrupted() -> int:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        allinone.started_or_stopped(interrupted, lambda: undone.append("stop"))
    assert undone == ["stop"]
