"""The canary's SSH login into its guest: the system `ssh` client (kumo has no SSH library
among its dependencies), the canary key pair's private key, and a known_hosts file of its own
for each login (the guest's host key is new at every boot: trusted on first use, and only
within that one login).

From where: a tenant network is not routed to any host. Its network host (the agent started
with `--network-host`; in `kumo up`, this machine) holds the network's namespace
`qdhcp-<network>`, whose DHCP port is on the network's bridge. When that namespace exists on
the machine the canary runs on, the login goes from inside it (`ip netns exec`, as root);
otherwise straight from the machine (a `router:external` network, whose gateway is the network
host's own, or any routed one).

Whether this runner can log in at all is checked once, when the canary's spec is resolved
(`unusable_reason`): `ssh` and `ip` on its PATH, root when it would log in from the network's
namespace, else a route to the network (`ip route get`). A runner that cannot log in leaves the
ssh step out; a login that fails for the runner's own reason (no `ssh`, no permission to enter
the namespace) is `RunnerFailed`: the runner's error, no verdict on any host."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kumo.network.names import namespace_name

NETNS_DIR = Path("/run/netns")  # where `ip netns` keeps the namespaces it names
USER = "root"  # the test image's only user (keys only, from the metadata)


class LoginFailed(Exception):
    pass


class RunnerFailed(LoginFailed):
    """The login failed for the runner's own reason (it cannot run ssh, or enter the network's
    namespace): no fault of the guest's nor of its host's."""


_NOT_PERMITTED = "Operation not permitted"  # `ip netns exec` run by someone not root


def route_works(address: str) -> bool:
    """Whether this machine has a route to `address` (`ip route get`)."""
    try:
        done = subprocess.run(
            ["ip", "route", "get", address],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def unusable_reason(
    network: str,
    address: str | None,
    netns_dir: Path = NETNS_DIR,
    which: Callable[[str], str | None] = shutil.which,
    euid: Callable[[], int] = os.geteuid,
    route: Callable[[str], bool] = route_works,
) -> str | None:
    """Why this runner cannot log into guests on `network` (`address`: one of its subnet's),
    or None when it can."""
    missing = [tool for tool in ("ssh", "ip") if which(tool) is None]
    if missing:
        return f"no {' or '.join(missing)} on this runner's PATH"
    namespace = namespace_name(network)
    if (netns_dir / namespace).exists():
        return None if euid() == 0 else f"not root: cannot enter the namespace {namespace}"
    if address is None:
        return "the network has no subnet to reach"
    return None if route(address) else f"no route from this runner to {address} (ip route get)"


class GuestShell(Protocol):
    """Runs one command in a guest by its address on a network; its standard output."""

    def run(self, address: str, network: str, command: str) -> str: ...

    def route(self, network: str) -> str:
        """How the guest is reached (for the step's detail)."""
        ...


def ssh_argv(key: Path, known_hosts: Path, address: str, command: str, timeout: float) -> list[str]:
    """The ssh command line of one login: keys only, no prompt, no user or system config."""
    options = {
        "BatchMode": "yes",
        "IdentitiesOnly": "yes",
        "PasswordAuthentication": "no",
        "StrictHostKeyChecking": "accept-new",
        "UserKnownHostsFile": str(known_hosts),
        "GlobalKnownHostsFile": "/dev/null",
        "ConnectTimeout": str(max(1, int(timeout))),
        "LogLevel": "ERROR",
    }
    argv = ["ssh", "-F", "/dev/null", "-i", str(key)]
    for name, value in options.items():
        argv += ["-o", f"{name}={value}"]
    return [*argv, f"{USER}@{address}", command]


@dataclass(frozen=True)
class SystemSsh:
    """The system ssh client with the canary's private key, from the network's namespace when
    this machine holds it (`netns_dir`)."""

    key: Path
    connect_timeout: float = 10.0
    netns_dir: Path = NETNS_DIR

    def namespace(self, network: str) -> str | None:
        name = namespace_name(network)
        return name if (self.netns_dir / name).exists() else None

    def route(self, network: str) -> str:
        namespace = self.namespace(network)
        return f"from namespace {namespace}" if namespace else "from this machine"

    def argv(self, address: str, network: str, known_hosts: Path, command: str) -> list[str]:
        ssh = ssh_argv(self.key, known_hosts, address, command, self.connect_timeout)
        namespace = self.namespace(network)
        return ["ip", "netns", "exec", namespace, *ssh] if namespace else ssh

    def run(self, address: str, network: str, command: str) -> str:
        with tempfile.TemporaryDirectory(prefix="kumo-canary-ssh-") as scratch:
            argv = self.argv(address, network, Path(scratch) / "known_hosts", command)
            try:
                done = subprocess.run(
                    argv,
                    capture_output=True,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    timeout=self.connect_timeout + 20,
                    check=False,
                )
            except OSError as exc:  # no ssh, no ip: the runner's
                raise RunnerFailed(f"ssh {USER}@{address}: {exc}") from None
            except subprocess.TimeoutExpired as exc:
                raise LoginFailed(f"ssh {USER}@{address}: {exc}") from None
        if done.returncode != 0:
            said = (done.stderr.strip() or f"exit status {done.returncode}").splitlines()[-1]
            if argv[0] == "ip" and _NOT_PERMITTED in done.stderr:  # EPERM entering the namespace
                raise RunnerFailed(f"ssh {USER}@{address} {self.route(network)}: {said}")
            raise LoginFailed(f"ssh {USER}@{address} {self.route(network)}: {said}")
        return done.stdout
