"""Domain XML built from a guest's configuration, read back by libvirt's rules (plain XML)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kumo.agent.libvirt.domain import GuestConfig, console_log_of, domain_xml, kumo_metadata, power_state
from kumo.compute.states import PowerState

UUID = "5f0d6f2c-7a55-4f0e-9a59-6a9d3f0b2d11"


def guest(**overrides: object) -> GuestConfig:
    base: dict[str, object] = {
        "uuid": UUID,
        "title": "web <1> & co",
        "hostname": "web-1",
        "vcpus": 2,
        "memory_mib": 256,
        "disk": Path("/var/lib/kumo/instances/x/disk"),
        "console_log": Path("/var/lib/kumo/instances/x/console.log"),
        "metadata": {"name": "web <1> & co", "project": "p1", "image": "img-1", "host": "compute-1"},
        "flavor": {"name": "m1.tiny", "vcpus": "2", "ram": "256", "disk": "1"},
    }
    base.update(overrides)
    return GuestConfig(**base)  # type: ignore[arg-type]


def test_domain_carries_the_instance_identity_flavor_and_disk() -> None:
    root = ET.fromstring(domain_xml(guest()))
    assert root.get("type") == "qemu"
    assert root.findtext("uuid") == UUID and root.findtext("name") == f"kumo-{UUID}"
    assert root.findtext("memory") == "256" and root.find("memory").get("unit") == "MiB"  # type: ignore[union-attr]
    assert root.findtext("vcpu") == "2"
    disk = root.find("devices/disk")
    assert disk is not None
    assert disk.find("source").get("file") == "/var/lib/kumo/instances/x/disk"  # type: ignore[union-attr]
    assert disk.find("driver").get("type") == "qcow2"  # type: ignore[union-attr]
    assert root.find("os/boot") is not None and root.find("os/kernel") is None
    oem = [e.text for e in root.iterfind("sysinfo/oemStrings/entry")]
    assert oem == ["kumo:hostname=web-1"]
    assert console_log_of(domain_xml(guest())) == Path("/var/lib/kumo/instances/x/console.log")


def test_metadata_round_trips_with_escaping() -> None:
    xml = domain_xml(guest())
    expected = {"name": "web <1> & co", "project": "p1", "image": "img-1", "host": "compute-1"}
    assert kumo_metadata(xml) == expected
    assert kumo_metadata("<domain><name>other</name></domain>") == {}


def test_direct_kernel_boot_and_kvm() -> None:
    root = ET.fromstring(
        domain_xml(guest(kernel=Path("/c/k"), initrd=Path("/c/i"), cmdline="console=ttyS0", virt_type="kvm"))
    )
    assert root.get("type") == "kvm" and root.find("cpu") is not None
    assert (root.findtext("os/kernel"), root.findtext("os/initrd"), root.findtext("os/cmdline")) == (
        "/c/k",
        "/c/i",
        "console=ttyS0",
    )
    assert root.find("os/boot") is None


def test_unknown_virt_type_is_refused() -> None:
    with pytest.raises(ValueError, match="xen"):
        domain_xml(guest(virt_type="xen"))


@pytest.mark.parametrize(
    "libvirt_state, expected",
    [
        (1, PowerState.RUNNING),
        (2, PowerState.RUNNING),
        (3, PowerState.PAUSED),
        (5, PowerState.SHUTDOWN),
        (6, PowerState.CRASHED),
        (7, PowerState.SUSPENDED),
        (0, PowerState.NOSTATE),
        (99, PowerState.NOSTATE),
    ],
)
def test_power_states(libvirt_state: int, expected: PowerState) -> None:
    assert power_state(libvirt_state) == expected
