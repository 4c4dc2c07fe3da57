"""The agent's loader of hypervisor drivers: every driver module, imported here. The libvirt
driver's module loads without libvirt-python (an optional dependency, see
kumo.agent.libvirt.connection); it is needed only once that driver connects."""

from __future__ import annotations

from collections.abc import Callable

from kumo.agent.drivers.base import ComputeDriver
from kumo.agent.drivers.fake import FakeDriver
from kumo.agent.drivers.libvirt import LibvirtDriver

DRIVERS: dict[str, Callable[..., ComputeDriver]] = {"fake": FakeDriver, "libvirt": LibvirtDriver}


def load_driver(name: str, host: str, **options: object) -> ComputeDriver:
    if name not in DRIVERS:
        raise ValueError(f"unknown driver {name!r}; known: {', '.join(sorted(DRIVERS))}")
    return DRIVERS[name](host, **options)
