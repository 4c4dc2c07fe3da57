"""The baremetal lab for tests: libvirt domains booting kumo's test image play the physical
servers and sushy-tools' emulator is their Redfish BMC on loopback (kumo/baremetal/lab.py).

Tests using the lab are marked `libvirt` and skipped, saying why, where QEMU guests cannot run (same rules as
tests/integration/libvirt: root, libvirt-python, scripts/install-libvirt; KUMO_TEST_LIBVIRT=0)
or sushy-tools is not installed (scripts/sushy-emulator setup).
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kumo.baremetal.drivers.base import Hardware, Node
from kumo.baremetal.drivers.load import load_hardware
from kumo.baremetal.lab import Emulator, Machine, define_machines, remove_machine
from tests.integration.libvirt.conftest import GuestImage, _skip_reason
from tests.integration.libvirt.conftest import test_image as test_image  # the session fixture

MARKER = "KUMO-BOOT-OK"
MACHINES = ("node-1", "node-2", "node-3")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the lab's machines are `libvirt`; the fake-driver ones run everywhere."""
    for item in items:
        here = Path(str(item.fspath)).is_relative_to(Path(__file__).parent)
        if here and {"lab", "bm"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.libvirt)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Lab:
    machines: list[Machine]
    emulator: Emulator

    @property
    def url(self) -> str:
        return self.emulator.url

    def machine(self, name: str) -> Machine:
        return next(m for m in self.machines if m.name == name)

    def node(self, name: str, **extra: str) -> Node:
        info = {**self.machine(name).driver_info(self.url), **extra}
        return Node(uuid=self.machine(name).uuid, driver="redfish", driver_info=info, name=name)

    def hardware(self, name: str, **extra: str) -> Hardware:
        return load_hardware(self.node(name, **extra), threading.BoundedSemaphore(8))

    def console(self, name: str) -> str:
        path = Path(self.machine(name).console_log)
        return path.read_text(errors="replace") if path.exists() else ""

    def domstate(self, name: str) -> str:
        done = subprocess.run(
            ["virsh", "-c", "qemu:///system", "domstate", self.machine(name).domain],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout.strip()

    def power_off_all(self) -> None:
        for m in self.machines:
            subprocess.run(
                ["virsh", "-c", "qemu:///system", "destroy", m.domain], capture_output=True, timeout=30
            )


@pytest.fixture(scope="session")
def lab(test_image: GuestImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    try:
        import sushy  # noqa: F401
        import sushy_tools  # noqa: F401
    except ImportError:
        pytest.skip("sushy / sushy-tools are not installed (scripts/sushy-emulator setup)")
    state = Path(os.environ.get("KUMO_BMLAB_DIR", tmp_path_factory.mktemp("bmlab")))
    machines = define_machines(list(MACHINES), state, test_image.kernel.parent)
    emulator = Emulator(machines, free_port(), state).start()
    yield Lab(machines, emulator)
    emulator.stop()
    for m in machines:
        remove_machine(m.domain)


@pytest.fixture
def bm(lab: Lab) -> Iterator[Lab]:
    """The lab with every machine powered off before and after the test."""
    lab.power_off_all()
    yield lab
    lab.power_off_all()


__all__ = ["Lab", "MARKER", "_skip_reason", "test_image"]
