"""The canary's SSH login into its guest: the system `ssh` client (kumo has no SSH library
among its dependencies), the canary key pair's private key, and a known_hosts file of its own
for each login (the guest's host key is new at every boot: trusted on first use, and only
within that one login).

From where: a tenant network is not routed to any host. Its network host (the agent started
with `--network-host`; in `kumo up`, this machine) holds the network's namespace
`qdhcp-<network>`, whose DHCP port is on the network's bridge. When that namespace exists on
the machine the canary runs on, the login goes from inside it (`ip netns exec`, as root);
otherwise straight from the machine (a `router:external` network, whose gateway is the network
host's own, or any routed one)."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kumo.agent.network.spec import namespace_name

NETNS_DIR = Path("/run/netns")  # where `ip netns` keeps the namespaces it names
USER = "root"  # the test image's only user (keys only, from the metadata)


class LoginFailed(Exception):
    pass


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
                    argv, capture_output=True, text=True, timeout=self.connect_timeout + 20, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise LoginFailed(f"ssh {USER}@{address}: {exc}") from None
        if done.returncode != 0:
            said = (done.stderr.strip() or f"exit status {done.returncode}").splitlines()[-1]
            raise LoginFailed(f"ssh {USER}@{address} {self.route(network)}: {said}")
        return done.stdout
