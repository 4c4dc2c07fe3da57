"""Domain XML built from a guest's configuration, read back by libvirt's rules (plain XML)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kumo.agent.libvirt.domain import (
    GuestConfig,
    Nic,
    PortError,
    console_log_of,
    cpu_set_text,
    disk_targets,
    domain_xml,
    interface_devices,
    interface_macs,
    interface_xml,
    kumo_metadata,
    nics_of,
    parse_cpu_set,
    power_state,
    with_sizing,
)
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


def port(n: int, **overrides: object) -> dict[str, object]:
    """A port as the API hands it to agents (the shared port contract)."""
    pid, net = f"{n}5c0ee9f-d6a1-4c2e-9d7e-0a1b2c3d4e5f", f"{n}e8e5957-6493-4a71-b4c8-7f2a9c1d0e3b"
    body: dict[str, object] = {
        "id": pid,
        "network_id": net,
        "mac_address": f"fa:16:3e:c9:cb:f{n}",
        "mtu": 1450,
        "fixed_ips": [{"subnet_id": "s", "ip_address": f"10.0.0.{10 + n}"}],
        "bridge": "brq" + net[:11],
        "tap": "tap" + pid[:11],
    }
    body.update(overrides)
    return body


def interfaces(xml: str) -> list[dict[str, str | None]]:
    """Each <interface> as the values libvirt reads from it."""
    return [
        {
            "type": el.get("type"),
            "bridge": el.find("source").get("bridge"),  # type: ignore[union-attr]
            "mac": el.find("mac").get("address"),  # type: ignore[union-attr]
            "tap": el.find("target").get("dev"),  # type: ignore[union-attr]
            "model": el.find("model").get("type"),  # type: ignore[union-attr]
            "mtu": el.find("mtu").get("size"),  # type: ignore[union-attr]
        }
        for el in ET.fromstring(xml).iterfind("devices/interface")
    ]


@pytest.mark.parametrize(
    "ports, expected",
    [
        (None, []),  # a server booted with networks "none": no NIC at all
        ([], []),
        (
            [port(1)],
            [
                {
                    "type": "bridge",
                    "bridge": "brq1e8e5957-64",
                    "mac": "fa:16:3e:c9:cb:f1",
                    "tap": "tap15c0ee9f-d6",
                    "model": "virtio",
                    "mtu": "1450",
                }
            ],
        ),
        (  # port order is NIC order (eth0, eth1); no MTU in the port: Ethernet's
            [port(2, mtu=None), port(1, mac_address="FA:16:3E:00:00:01")],
            [
                {
                    "type": "bridge",
                    "bridge": "brq2e8e5957-64",
                    "mac": "fa:16:3e:c9:cb:f2",
                    "tap": "tap25c0ee9f-d6",
                    "model": "virtio",
                    "mtu": "1500",
                },
                {
                    "type": "bridge",
                    "bridge": "brq1e8e5957-64",
                    "mac": "fa:16:3e:00:00:01",
                    "tap": "tap15c0ee9f-d6",
                    "model": "virtio",
                    "mtu": "1450",
                },
            ],
        ),
    ],
)
def test_one_virtio_nic_per_port_on_its_bridge(
    ports: list[dict[str, object]] | None, expected: list[dict[str, str]]
) -> None:
    assert interfaces(domain_xml(guest(nics=nics_of(ports)))) == expected


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"bridge": None}, "no 'bridge'"),
        ({"tap": None}, "no 'tap'"),
        ({"mac_address": None}, "no 'mac_address'"),
        ({"tap": "tap0123456789abc"}, "not an interface name"),  # 16 bytes: over IFNAMSIZ
        ({"tap": "vnet0"}, "prefix libvirt reserves"),
        ({"bridge": "br x"}, "not an interface name"),
        ({"bridge": "br\n"}, "not an interface name"),
        ({"mac_address": "fa:16:3e:00:00"}, "not six"),
        ({"mac_address": "fa:16:3e:00:00:zz"}, "not six"),
        ({"mac_address": "01:16:3e:00:00:01"}, "multicast"),
        ({"mtu": 67}, "outside 68-65535"),
        ({"mtu": "1500"}, "non-integer MTU"),
        ({"mtu": True}, "non-integer MTU"),
    ],
)
def test_unusable_ports_are_refused_with_the_reason(bad: dict[str, object], message: str) -> None:
    body = {k: v for k, v in port(1, **bad).items() if v is not None or k == "mtu"}
    with pytest.raises(PortError, match=message):
        nics_of([body])


def test_two_ports_on_one_tap_are_refused() -> None:
    with pytest.raises(PortError, match="share a tap"):
        nics_of([port(1), port(1, mac_address="fa:16:3e:00:00:02")])


def test_smbios_says_openstack_to_cloud_init_and_keeps_kumo_oem_strings() -> None:
    root = ET.fromstring(domain_xml(guest()))
    system = {e.get("name"): e.text for e in root.iterfind("sysinfo/system/entry")}
    chassis = {e.get("name"): e.text for e in root.iterfind("sysinfo/chassis/entry")}
    # cloud-init's ds-identify: product "OpenStack Nova" or chassis asset tag "OpenStack Nova".
    assert system["product"] == "OpenStack Nova" and chassis["asset"] == "OpenStack Nova"
    assert system["uuid"] == UUID and system["serial"] == UUID
    assert [e.text for e in root.iterfind("sysinfo/oemStrings/entry")] == ["kumo:hostname=web-1"]
    assert root.find("os/smbios").get("mode") == "sysinfo"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "machine, bus, dev",
    [
        (None, "ide", "hdd"),
        ("pc-i440fx-7.2", "ide", "hdd"),
        ("q35", "sata", "sda"),
        ("pc-q35-7.2", "sata", "sda"),
    ],
)
def test_config_drive_is_a_read_only_cdrom(machine: str | None, bus: str, dev: str) -> None:
    root = ET.fromstring(domain_xml(guest(config_drive=Path("/i/x/disk.config"), machine=machine)))
    (cdrom,) = root.findall("devices/disk[@device='cdrom']")
    assert cdrom.get("type") == "file" and cdrom.find("readonly") is not None
    assert cdrom.find("source").get("file") == "/i/x/disk.config"  # type: ignore[union-attr]
    assert cdrom.find("driver").get("type") == "raw"  # type: ignore[union-attr]
    assert (cdrom.find("target").get("bus"), cdrom.find("target").get("dev")) == (bus, dev)  # type: ignore[union-attr]
    # The root disk stays the first disk, and a guest without a config drive has no CD-ROM.
    assert root.find("devices/disk").get("device") == "disk"  # type: ignore[union-attr]
    assert ET.fromstring(domain_xml(guest())).find("devices/disk[@device='cdrom']") is None


def test_nic_reads_the_port_contract() -> None:
    assert Nic.from_port(port(3)) == Nic("brq3e8e5957-64", "tap35c0ee9f-d6", "fa:16:3e:c9:cb:f3", 1450)


def test_a_hot_plugged_nic_is_the_interface_a_domain_has_for_it() -> None:
    """interface_xml (os-interface attach/detach) is the very element domain_xml writes for the
    port; interface_macs reads the MACs of a domain's NICs back."""
    nic = Nic.from_port(port(3))
    whole = ET.fromstring(domain_xml(guest(nics=(nic,))))
    (in_domain,) = whole.iterfind("devices/interface")

    def shape(element: ET.Element) -> list[tuple[str, dict[str, str]]]:
        return [(e.tag, dict(e.attrib)) for e in element.iter()]

    assert shape(ET.fromstring(interface_xml(nic))) == shape(in_domain)
    assert shape(in_domain)[0] == ("interface", {"type": "bridge"})
    two = guest(nics=nics_of([port(1), port(3)]))
    assert interface_macs(domain_xml(two)) == {"fa:16:3e:c9:cb:f1", "fa:16:3e:c9:cb:f3"}
    assert interface_macs(domain_xml(guest())) == set()


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


def test_a_rescue_definition_attaches_the_servers_disk_second() -> None:
    own = Path("/var/lib/kumo/instances/x/disk")
    xml = domain_xml(guest(disk=Path("/var/lib/kumo/instances/x/disk.rescue"), extra_disks=(own,)))
    assert disk_targets(xml) == ["vda", "vdb"]
    vdb = ET.fromstring(xml).findall("./devices/disk")[1]
    assert vdb.find("source").get("file") == str(own)  # type: ignore[union-attr]


def test_with_sizing_changes_only_memory_and_vcpus() -> None:
    nic = Nic(bridge="brq-1", tap="tap-1", mac="fa:16:3e:00:00:01")
    xml = domain_xml(guest(nics=(nic,)))
    resized = ET.fromstring(with_sizing(xml, 128, 1))
    memory = resized.find("memory")
    assert memory is not None and (memory.text, memory.get("unit")) == ("128", "MiB")
    assert resized.findtext("vcpu") == "1"
    assert kumo_metadata(with_sizing(xml, 128, 1)) == kumo_metadata(xml)
    assert interface_devices(with_sizing(xml, 128, 1)) == [("fa:16:3e:00:00:01", "tap-1")]


def test_a_cpu_shared_set_pins_every_vcpu_to_those_host_cpus() -> None:
    root = ET.fromstring(domain_xml(guest(vcpus=2, cpuset="0-1,3")))
    vcpu = root.find("vcpu")
    assert vcpu is not None and vcpu.text == "2"
    assert vcpu.attrib == {"placement": "static", "cpuset": "0-1,3"}
    # Without one, the guest runs on any host CPU (libvirt's default), as before.
    unpinned = ET.fromstring(domain_xml(guest())).find("vcpu")
    assert unpinned is not None and unpinned.attrib == {}
    # A cold move's sizing keeps the pinning of the destination's definition.
    resized = ET.fromstring(with_sizing(domain_xml(guest(cpuset="1")), 512, 4)).find("vcpu")
    assert resized is not None and (resized.text, resized.get("cpuset")) == ("4", "1")


@pytest.mark.parametrize(
    ("text", "cpus", "normal"),
    [
        ("0", (0,), "0"),
        ("0-1", (0, 1), "0-1"),
        (" 3, 0-1 ,1", (0, 1, 3), "0-1,3"),
        ("0-7,^2,^5-6", (0, 1, 3, 4, 7), "0-1,3-4,7"),
        ("4-4", (4,), "4"),
    ],
)
def test_cpu_lists_read_as_nova_reads_cpu_shared_set(text: str, cpus: tuple[int, ...], normal: str) -> None:
    assert parse_cpu_set(text) == cpus
    assert cpu_set_text(cpus) == normal


@pytest.mark.parametrize("text", ["", "a", "1-", "3-1", "0,,1", "^0", "0-3,^0-3", "-1", "0-99999", "1.5"])
def test_bad_cpu_lists_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="Invalid CPU list"):
        parse_cpu_set(text)
