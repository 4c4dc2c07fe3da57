"""The canary's reading of what its guest printed about its metadata (the test image's
`KUMO-MD` line) and the check of it against the server, as tables."""

from __future__ import annotations

import pytest

from kumo.canary.probe import MetadataLine, check_metadata, parse_metadata_line

UUID = "5d1f2f3c-8c52-4a0b-9d34-2f1f0a6b7e11"
OTHER = "0a7c5e0e-1111-4222-8333-944455556666"


@pytest.mark.parametrize(
    ("console", "line"),
    [
        ("", None),
        ("KUMO-NET-OK eth0 10.0.0.5/24 gw=10.0.0.1 mtu=1500\nKUMO-BOOT-OK vm vcpus=1 mem_kb=5\n", None),
        (f"KUMO-MD source=metadata uuid={UUID} hostname=vm.novalocal keys=1", None),  # no newline yet
        (
            "KUMO-NET-OK eth0 10.0.0.5/24\n"
            f"KUMO-MD source=metadata uuid={UUID} hostname=vm.novalocal keys=1\n"
            "KUMO-BOOT-OK vm vcpus=1 mem_kb=5 ip=10.0.0.5 ssh=up\n",
            MetadataLine("metadata", UUID, "vm.novalocal", 1),
        ),
        (  # a reboot prints it again: the last whole one counts
            f"KUMO-MD source=config-2 uuid={OTHER} hostname=a keys=0\n"
            f"KUMO-MD source=metadata uuid={UUID} hostname=vm keys=2\n",
            MetadataLine("metadata", UUID, "vm", 2),
        ),
        ("KUMO-MD source= uuid= hostname= keys=0\n", MetadataLine("", "", "", 0)),  # empty fields
    ],
)
def test_the_metadata_line_read_from_a_console(console: str, line: MetadataLine | None) -> None:
    assert parse_metadata_line(console) == line


@pytest.mark.parametrize(
    ("line", "keys", "wrong"),
    [
        (MetadataLine("metadata", UUID, "vm.novalocal", 1), True, None),
        (MetadataLine("config-2", UUID, "vm", 0), False, None),  # no key pair: no key needed
        (None, False, "the guest printed no KUMO-MD line: it read no metadata"),
        (
            MetadataLine("metadata", OTHER, "vm.novalocal", 1),
            True,
            f"the guest read the metadata of {OTHER}, not of {UUID}",
        ),
        (
            MetadataLine("metadata", "", "vm", 1),
            True,
            f"the guest read the metadata of no uuid, not of {UUID}",
        ),
        (
            MetadataLine("metadata", UUID, "vm2.novalocal", 1),
            True,
            "the guest read the hostname vm2.novalocal, the server's is vm",
        ),
        (
            MetadataLine("metadata", UUID, "vm.novalocal", 0),
            True,
            "the guest read no public key from its metadata",
        ),
    ],
)
def test_what_the_guest_read_must_be_its_own_metadata(
    line: MetadataLine | None, keys: bool, wrong: str | None
) -> None:
    assert check_metadata(line, UUID, "vm", keys) == wrong
