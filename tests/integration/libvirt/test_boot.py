"""Booting real guests through the API and reading their serial console back through it."""

from __future__ import annotations

from kumo.agent.libvirt.domain import kumo_metadata
from tests.integration.libvirt.conftest import MARKER, Hypervisor, domain


def test_guest_boots_with_flavor_and_prints_marker_on_console(hv: Hypervisor) -> None:
    server_id = hv.create("web-1")
    server = hv.wait_status(server_id, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == hv.host

    out = hv.wait_console(server_id, MARKER)
    line = next(x for x in out.splitlines() if x.startswith(MARKER))
    # The guest sees its hostname, the flavor's vCPUs and RAM, and a root disk grown to 1 GiB.
    assert line.split()[1] == "web-1"
    assert "vcpus=1" in line
    assert "disk_bytes=1073741824" in line
    mem_kb = int(line.split("mem_kb=")[1].split()[0])
    assert 64 * 1024 < mem_kb <= 128 * 1024

    # The domain is the instance: same UUID, kumo's data in its metadata.
    xml = domain(server_id)
    assert f"<uuid>{server_id}</uuid>" in xml
    meta = kumo_metadata(xml)
    assert meta["name"] == "web-1" and meta["host"] == hv.host and meta["image"] == hv.image_id


def test_console_length_returns_the_last_lines(hv: Hypervisor) -> None:
    server_id = hv.create("tail")
    hv.wait_status(server_id, "ACTIVE")
    full = hv.wait_console(server_id, MARKER)
    # Nova's _tail_log: the last 2 parts of the log split at newlines (the last one the empty
    # part after a final newline, when the log ends with one)
    last = hv.console(server_id, length=2)
    assert len(last.split("\n")) == 2 and last.strip()
    assert last in full
    assert hv.console(server_id, length=0) == ""
