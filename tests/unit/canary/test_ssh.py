"""The canary's SSH login command: keys only, a known_hosts of its own, and from the network's
namespace exactly when this machine holds it; the runner's pre-flight, and its own failures
told from the guest's."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kumo.canary.ssh import LoginFailed, RunnerFailed, SystemSsh, ssh_argv, unusable_reason

NET = "9b0c6a4e-3f2d-4c1b-8a7e-112233445566"


def test_the_ssh_command_line() -> None:
    argv = ssh_argv(Path("/k/id"), Path("/t/known_hosts"), "10.0.0.5", "hostname", 10)
    assert argv[:5] == ["ssh", "-F", "/dev/null", "-i", "/k/id"]
    assert argv[-2:] == ["root@10.0.0.5", "hostname"]
    options = dict(o.split("=", 1) for o in argv[6:-2:2])
    assert argv[5:-2:2] == ["-o"] * len(options)
    assert options == {
        "BatchMode": "yes",
        "IdentitiesOnly": "yes",
        "PasswordAuthentication": "no",
        "StrictHostKeyChecking": "accept-new",
        "UserKnownHostsFile": "/t/known_hosts",
        "GlobalKnownHostsFile": "/dev/null",
        "ConnectTimeout": "10",
        "LogLevel": "ERROR",
    }


def test_from_the_networks_namespace_when_this_machine_holds_it(tmp_path: Path) -> None:
    shell = SystemSsh(Path("/k/id"), netns_dir=tmp_path)
    known = tmp_path / "known_hosts"
    direct = shell.argv("10.0.0.5", NET, known, "hostname")
    assert direct[0] == "ssh" and shell.route(NET) == "from this machine"
    (tmp_path / f"qdhcp-{NET}").touch()  # `ip netns add` names it there
    inside = shell.argv("10.0.0.5", NET, known, "hostname")
    assert inside == ["ip", "netns", "exec", f"qdhcp-{NET}", *direct]
    assert shell.route(NET) == f"from namespace qdhcp-{NET}"


def _reason(tmp_path: Path, **kwargs: Any) -> str | None:
    options: dict[str, Any] = {
        "netns_dir": tmp_path,
        "which": lambda tool: f"/usr/bin/{tool}",
        "euid": lambda: 1000,
        "route": lambda address: True,
    }
    return unusable_reason(NET, "10.0.0.1", **{**options, **kwargs})


def test_the_runner_pre_flight(tmp_path: Path) -> None:
    assert _reason(tmp_path) is None  # ssh and ip, a route to the network
    assert _reason(tmp_path, which=lambda tool: None) == "no ssh or ip on this runner's PATH"
    assert _reason(tmp_path, which=lambda t: None if t == "ssh" else t) == "no ssh on this runner's PATH"
    assert _reason(tmp_path, route=lambda a: False) == "no route from this runner to 10.0.0.1 (ip route get)"
    assert unusable_reason(NET, None, netns_dir=tmp_path, which=str) == "the network has no subnet to reach"
    (tmp_path / f"qdhcp-{NET}").touch()  # from its namespace: root is needed, no route
    assert _reason(tmp_path) == f"not root: cannot enter the namespace qdhcp-{NET}"
    assert _reason(tmp_path, euid=lambda: 0, route=lambda a: False) is None


def _ran(returncode: int, stderr: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert kwargs["stdin"] == subprocess.DEVNULL
        return subprocess.CompletedProcess(argv, returncode, "", stderr)

    return run


def test_the_runners_own_failures_are_told_from_the_guests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell = SystemSsh(Path("/k/id"), netns_dir=tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no ssh at all
    with pytest.raises(RunnerFailed, match="No such file"):
        shell.run("10.0.0.5", NET, "hostname")
    (tmp_path / f"qdhcp-{NET}").touch()
    eperm = 'setting the network namespace "qdhcp-x" failed: Operation not permitted\n'
    monkeypatch.setattr(subprocess, "run", _ran(255, eperm))
    with pytest.raises(RunnerFailed, match="Operation not permitted"):
        shell.run("10.0.0.5", NET, "hostname")
    monkeypatch.setattr(
        subprocess, "run", _ran(255, "ssh: connect to host 10.0.0.5 port 22: Connection refused")
    )
    with pytest.raises(LoginFailed, match="Connection refused") as refused:
        shell.run("10.0.0.5", NET, "hostname")
    assert not isinstance(refused.value, RunnerFailed)  # the guest's: its host's failure
