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
from kumo.canary.ssh import LoginFailed, RunnerFailed

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
        (MetadataLine("metadata", UUID, "vm", 0), False, None),  # no key pair: no key needed
        (  # a server without a config drive must have read the metadata service
            MetadataLine("config-2", UUID, "vm.novalocal", 1),
            True,
            "the guest read its metadata from config-2, not from the metadata service",
        ),
        (
            MetadataLine("", UUID, "vm.novalocal", 1),
            True,
            "the guest read its metadata from (nothing), not from the metadata service",
        ),
        (  # the same short name in another domain is not the server's hostname
            MetadataLine("metadata", UUID, "vm.example.org", 1),
            True,
            "the guest read the hostname vm.example.org, the server's is vm",
        ),
        (
            MetadataLine("metadata", UUID, "vm.novalocal.evil", 1),
            True,
            "the guest read the hostname vm.novalocal.evil, the server's is vm",
        ),
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


def test_a_config_drive_is_a_source_only_for_a_server_with_one() -> None:
    line = MetadataLine("config-2", UUID, "vm.novalocal", 1)
    assert check_metadata(line, UUID, "vm", True, config_drive=True) is None
    assert (
        check_metadata(MetadataLine("metadata", UUID, "vm", 1), UUID, "vm", True, config_drive=True) is None
    )
    assert "not from the metadata service" in str(check_metadata(line, UUID, "vm", True))


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
    fake_guest = BootLine(1, 5, "10.0.0.5", "off")
    assert _ssh_step(shell, "fake", fake_guest)["detail"] == "skipped: no real guest (a fake hypervisor)"
    assert shell.calls == []


def test_a_host_typed_fake_whose_guest_runs_ssh_is_logged_into() -> None:
    """`fake` is also the hypervisor_type column's default: a real guest (its boot line says
    ssh=up) on a host that reports it is logged into all the same."""
    shell = ScriptedShell("vm")
    assert _ssh_step(shell, "fake")["detail"] == "root@10.0.0.5 from namespace qdhcp-net-1: hostname vm"
    assert shell.calls == [("10.0.0.5", "net-1", "hostname")]


def test_the_hypervisor_types_the_loop_read_are_not_asked_again() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"asked {request.url}")

    api = httpx.Client(base_url="http://kumo", transport=httpx.MockTransport(answer))
    prober = Prober(api, CanarySpec("image", "flavor"), hypervisor_types={"h1": "QEMU"})
    assert prober.hypervisor_type("h1") == "QEMU"


class RunnerShell(ScriptedShell):
    """A runner that cannot log in at all (no ssh, or no permission to enter the namespace)."""

    def run(self, address: str, network: str, command: str) -> str:
        self.calls.append((address, network, command))
        raise RunnerFailed(f"ssh root@{address}: [Errno 1] Operation not permitted")


def _cloud(console: str) -> httpx.Client:
    """A compute API with one server that boots ACTIVE on h1, prints `console`, stops and goes."""
    state = {"status": "ACTIVE", "gone": False}

    def answer(request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path.endswith("/os-hypervisors/detail"):
            return httpx.Response(
                200, json={"hypervisors": [{"hypervisor_hostname": "h1", "hypervisor_type": "QEMU"}]}
            )
        if path.endswith("/flavors/flavor"):
            return httpx.Response(200, json={"flavor": {"vcpus": 1, "ram": 64}})
        if method == "POST" and path.endswith("/servers"):
            return httpx.Response(202, json={"server": {"id": UUID}})
        if method == "POST" and path.endswith("/action"):
            if b"os-getConsoleOutput" in request.content:
                return httpx.Response(200, json={"output": console})
            state["status"] = "SHUTOFF"
            return httpx.Response(202)
        if method == "DELETE":
            state["gone"] = True
            return httpx.Response(204)
        if path.endswith(f"/servers/{UUID}"):
            if state["gone"]:
                return httpx.Response(404)
            server = {
                "id": UUID,
                "status": state["status"],
                "OS-EXT-STS:task_state": None,
                "OS-EXT-SRV-ATTR:host": "h1",
                "OS-EXT-SRV-ATTR:hostname": "vm",
                "OS-EXT-AZ:availability_zone": "nova",
                "addresses": {"net-1": [{"addr": "10.0.0.5"}]},
            }
            return httpx.Response(200, json={"server": server})
        return httpx.Response(200, json={"allocations": {}, "ports": []})

    return httpx.Client(base_url="http://kumo", transport=httpx.MockTransport(answer))


CONSOLE = (
    f"KUMO-MD source=metadata uuid={UUID} hostname=vm.novalocal keys=1\n"
    "KUMO-BOOT-OK vm vcpus=1 mem_kb=60000 ip=10.0.0.5/24 ssh=up\n"
)


def _canary(shell: ScriptedShell | None, **spec: Any) -> dict[str, Any]:
    ticks = iter(range(1000))
    prober = Prober(
        _cloud(CONSOLE),
        CanarySpec("image", "flavor", "net-1", "kumo-canary", Path("/k/id"), timeout=50.0, poll=0.0, **spec),
        clock=lambda: float(next(ticks)),
        shell=shell,
    )
    with patch("kumo.canary.probe.time.sleep"):
        return prober.run("host", "h1", "nova")


def test_a_runner_that_cannot_log_in_blames_no_host() -> None:
    """Its own failure (EPERM entering the namespace, no ssh) is reported without a host, so
    that no host's verdict moves; it is not retried."""
    shell = RunnerShell("vm")
    report = _canary(shell)
    assert (report["ok"], report["failed_step"], report["host"]) == (False, "ssh", None)
    assert "the runner cannot log in" in report["error"] and "Operation not permitted" in report["error"]
    assert len(shell.calls) == 1
    # a guest that refuses the login is its host's failure
    guest = _canary(ScriptedShell("vm", failures=1000))
    assert (guest["failed_step"], guest["host"]) == ("ssh", "h1")
    assert _canary(ScriptedShell("vm"))["ok"]


def test_an_unusable_runner_skips_the_login_and_says_why() -> None:
    shell = ScriptedShell("vm")
    report = _canary(shell, ssh_skipped="no ssh on this runner's PATH")
    assert report["ok"] and report["host"] == "h1" and shell.calls == []
    ssh = next(s for s in report["steps"] if s["step"] == "ssh")
    assert ssh["detail"] == "skipped: this runner cannot log in (no ssh on this runner's PATH)"


def test_no_ssh_step_without_a_private_key() -> None:
    ticks = iter(range(1000))
    spec = CanarySpec("image", "flavor", "net-1", "kumo-canary", None, timeout=50.0, poll=0.0)
    prober = Prober(_cloud(CONSOLE), spec, clock=lambda: float(next(ticks)))
    with patch("kumo.canary.probe.time.sleep"):
        report = prober.run("az", "nova")
    assert report["ok"] and "ssh" not in [s["step"] for s in report["steps"]]
    assert "metadata" in [s["step"] for s in report["steps"]]
