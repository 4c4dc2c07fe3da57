"""The lab's machine definitions: NICs on a bridge with a given MAC (kumo/baremetal/lab.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kumo.baremetal.lab import Machine, Nic, machine_xml, parse_nics

MACHINE = Machine("node-1", "6d5334ee-33c8-46e5-b060-cfa498f2537f", "bmlab-x-node-1", "/c.log", "/d.raw")


def _image(tmp_path: Path) -> Path:
    (tmp_path / "manifest").write_text("os_command_line=console=ttyS0 quiet\n")
    return tmp_path


def test_a_machine_has_its_nics_on_their_bridges_with_their_macs(tmp_path: Path) -> None:
    nics = [Nic("brq0123456789a", "52:54:00:12:34:56"), Nic("brqbbbbbbbbbbb", "52:54:00:12:34:57")]
    dom = ET.fromstring(machine_xml(MACHINE, _image(tmp_path), nics=nics))
    found = [
        (
            i.get("type"),
            i.find("source").get("bridge"),
            i.find("mac").get("address"),
            i.find("model").get("type"),
        )  # type: ignore[union-attr]
        for i in dom.iter("interface")
    ]
    assert found == [
        ("bridge", "brq0123456789a", "52:54:00:12:34:56", "virtio"),
        ("bridge", "brqbbbbbbbbbbb", "52:54:00:12:34:57", "virtio"),
    ]
    assert dom.find("os/cmdline").text == "console=ttyS0 quiet"  # type: ignore[union-attr]


def test_a_machine_without_nics_has_no_interface(tmp_path: Path) -> None:
    assert list(ET.fromstring(machine_xml(MACHINE, _image(tmp_path))).iter("interface")) == []


def test_nic_options() -> None:
    assert parse_nics(["node-1=brqa,52:54:00:00:00:01", "node-1=brqb,52:54:00:00:00:02"]) == {
        "node-1": [Nic("brqa", "52:54:00:00:00:01"), Nic("brqb", "52:54:00:00:00:02")]
    }
    with pytest.raises(SystemExit):
        parse_nics(["node-1=brqa"])
