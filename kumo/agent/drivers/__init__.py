"""Hypervisor drivers. A driver is a handful of typed methods (kumo.agent.drivers.base);
a new one is a new module registered in DRIVERS."""

from __future__ import annotations

from collections.abc import Callable

from kumo.agent.drivers.base import ComputeDriver
from kumo.agent.drivers.fake import FakeDriver


def load_driver(name: str, host: str, **options: object) -> ComputeDriver:
    factories: dict[str, Callable[..., ComputeDriver]] = {"fake": FakeDriver}
    if name == "libvirt":  # imports libvirt-python: only when asked for
        from kumo.agent.drivers.libvirt import LibvirtDriver

        factories["libvirt"] = LibvirtDriver
    if name not in factories:
        raise ValueError(f"unknown driver {name!r}; known: {', '.join(sorted(factories))}")
    return factories[name](host, **options)
