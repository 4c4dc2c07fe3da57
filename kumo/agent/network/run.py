"""Running the host's network tools: one place that turns a failed command into NetworkError."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from kumo.agent.drivers.base import DriverError


class NetworkError(DriverError):
    """A network tool failed (ip, dnsmasq, iptables-restore…); the message says which and why."""


def run(argv: Sequence[str], stdin: str | None = None, timeout: float = 30.0, check: bool = True) -> str:
    """Runs argv, returns its stdout; NetworkError (with stderr) when it fails and `check`."""
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetworkError(f"{argv[0]}: {exc}") from exc
    if check and done.returncode != 0:
        raise NetworkError(f"{' '.join(argv[:4])}: {(done.stderr or done.stdout).strip()[-500:]}")
    return done.stdout


def in_namespace(namespace: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", namespace, *argv]
