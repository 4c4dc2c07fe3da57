"""The firewall a network data plane drives: per-port stateful security groups + anti-spoofing.

A driver keys everything on the port's tap *name*, so a port's rules can be installed before its
tap exists (install, then start the guest: it never runs unfiltered). Every method is idempotent
and atomic per call (no packet ever sees half a port's rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kumo.agent.network.spec import PortFirewall


class Firewall(Protocol):
    name: str

    def apply(self, ports: Sequence[PortFirewall]) -> None:
        """Install or replace these ports' rules (other ports' stay as they are), in one
        transaction. A port with port security disabled ends up with no filtering at all (its
        tap declared open: a tap of a kumo bridge the firewall does not know passes nothing)."""
        ...

    def remove(self, taps: Sequence[str]) -> None:
        """Remove the rules of the ports on these taps (unknown taps are ignored)."""
        ...

    def taps(self) -> set[str]:
        """The taps that currently have rules (secured, or declared open)."""
        ...

    def teardown(self) -> None:
        """Remove everything the driver ever installed on this host (every port's rules and the
        driver's own hooks into the host's tables): for tests and benchmarks that leave a host
        as they found it, never on a serving agent."""
        ...
