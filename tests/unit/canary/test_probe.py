"""The canary's reading of what its guest printed about its metadata (the test image's
`KUMO-MD` line) and the check of it against the server, as tables; its ssh step over a
scripted guest shell (retries, the hostname, no login into a guest whose SSH server is off or
into a fake one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import pytest

from kumo.canary.probe import (
    BootLine,
    CanarySpec,
    MetadataLine,
    Prober,
    StepFailed,
    _Run,
    check_metadata,
    parse_metadata_line,
)
from kumo.canary.ssh import LoginFailed

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


class ScriptedShell:
    """A guest shell that fails the first `failures` logins, then answers `hostname`."""

    def __init__(self, hostname: str, failures: int = 0) -> None:
        self.hostname = hostname
        self.failures = failures
        self.calls: list[tuple[str, str, str]] = []

    def run(self, address: str, network: str, command: str) -> str:
        self.calls.append((address, network, command))
        if len(self.calls) <= self.failures:
            raise LoginFailed(f"ssh root@{address}: Connection refused")
        return self.hostname + "\n"

    def route(self, network: str) -> str:
        return f"from namespace qdhcp-{network}"


def _api(hypervisor_type: str) -> httpx.Client:
    """The two reads of the ssh step: the host's hypervisor type and the server's hostname."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/os-hypervisors/detail"):
            hypervisors = [
                {"hypervisor_hostname": "h10", "hypervisor_type": "fake"},  # the pattern matches both
                {"hypervisor_hostname": "h1", "hypervisor_type": hypervisor_type},
            ]
            return httpx.Response(200, json={"hypervisors": hypervisors})
        return httpx.Response(200, json={"server": {"id": UUID, "OS-EXT-SRV-ATTR:hostname": "vm"}})

    return httpx.Client(base_url="http://kumo", transport=httpx.MockTransport(answer))


def _ssh_step(
    shell: ScriptedShell, hypervisor_type: str = "QEMU", line: BootLine | None = None
) -> dict[str, Any]:
    spec = CanarySpec("image", "flavor", "net-1", "kumo-canary", Path("/k/id"), timeout=5.0, poll=0.0)
    ticks = iter(range(100))
    prober = Prober(_api(hypervisor_type), spec, clock=lambda: float(next(ticks)), shell=shell)
    run = _Run("az", "nova", server_id=UUID, host="h1")
    run.steps.append({"step": "ssh", "ok": False, "request_id": None, "seconds": 0.0, "detail": None})
    with patch("kumo.canary.probe.time.sleep"):
        prober._ssh(run, line or BootLine(1, 5, "10.0.0.5", "up"))
    return run.steps[-1]


def test_the_login_is_retried_and_must_answer_the_servers_hostname() -> None:
    shell = ScriptedShell("vm", failures=2)
    assert _ssh_step(shell)["detail"] == "root@10.0.0.5 from namespace qdhcp-net-1: hostname vm"
    assert shell.calls == [("10.0.0.5", "net-1", "hostname")] * 3
    with pytest.raises(StepFailed, match="answered hostname 'other', the server's is 'vm'"):
        _ssh_step(ScriptedShell("other"))
    with pytest.raises(StepFailed, match="Connection refused"):  # ssh's own words, at the deadline
        _ssh_step(ScriptedShell("vm", failures=100))


def test_no_login_into_a_guest_whose_ssh_server_is_off_nor_into_a_fake_one() -> None:
    shell = ScriptedShell("vm")
    with pytest.raises(StepFailed, match=r"the guest's SSH server is off \(ip=10.0.0.5\)"):
        _ssh_step(shell, line=BootLine(1, 5, "10.0.0.5", "off"))
    assert _ssh_step(shell, "fake")["detail"] == "skipped: no real guest (a fake hypervisor)"
    assert shell.calls == []
