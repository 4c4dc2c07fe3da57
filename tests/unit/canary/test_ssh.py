"""The canary's SSH login command: keys only, a known_hosts of its own, and from the network's
namespace exactly when this machine holds it."""

from __future__ import annotations

from pathlib import Path

from kumo.canary.ssh import SystemSsh, ssh_argv

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
