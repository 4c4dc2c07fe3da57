"""Before a guest starts, its reservations are served: a hypervisor waits (bounded) until each
of its ports' networks' DHCP hosts applied the generation the port came with.

A server's spec carries, per port, the network's `dhcp_generation` read when the spec was built
(kumo/network/servers.py `spec_port`), which is at least the generation that wrote the port's
reservation. `network_sync` runs on the network host meanwhile; a guest booted before it ran
retries DHCP (udhcpc ~20 s, dhclient longer) and mostly recovers, but a busy network host
made boots flaky. So the agent asks the API's long poll
`GET /internal/v1/networks/{id}/dhcp-generation?min=G&wait=S` (kumo/network/dhcp.py
`dhcp_served`) first.

Invariant: this never fails a boot, and holds one back at most `budget` seconds in all (rounded
up to a whole second, the long poll's unit, plus a request's round trip): a timeout, a network
gone, an API that does not answer are logged and the guest starts anyway.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("kumo.agent")

# One long poll of the API: (network id, generation, seconds to wait) → its answer.
Ask = Callable[[str, int, int], Mapping[str, Any]]


def wanted_generations(instance: Mapping[str, Any]) -> dict[str, int]:
    """Network id → the highest `dhcp_generation` among the instance's ports on it (ports
    without one, or malformed, are left out: nothing to wait for)."""
    wanted: dict[str, int] = {}
    for port in instance.get("ports") or ():
        if not isinstance(port, Mapping):
            continue
        network_id, generation = port.get("network_id"), port.get("dhcp_generation")
        if not isinstance(network_id, str) or not isinstance(generation, int) or isinstance(generation, bool):
            continue
        wanted[network_id] = max(generation, wanted.get(network_id, generation))
    return wanted


@dataclass
class DhcpWait:
    """What waiting for one guest's reservations did (logged; for tests)."""

    served: list[str] = field(default_factory=list)  # networks whose host applied the generation
    late: list[str] = field(default_factory=list)  # not served in time, or not asked: boot anyway
    seconds: float = 0.0


def await_served(
    ask: Ask,
    instance: Mapping[str, Any],
    budget: float,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], None] = time.sleep,
) -> DhcpWait:
    """Waits until every network of the instance's ports serves its generation, at most
    `budget` seconds in all; never raises (see the module's invariant)."""
    outcome = DhcpWait()
    start = clock()
    deadline = start + budget
    for network_id, generation in sorted(wanted_generations(instance).items()):
        served = False
        try:
            while True:
                left = deadline - clock()
                answer = ask(network_id, generation, max(0, math.ceil(left)) if left > 0 else 0)
                served = bool(answer.get("served"))
                if served or deadline - clock() <= 0:
                    break
                pause(min(0.05, max(0.0, deadline - clock())))  # an answer before its wait ended
        except Exception as exc:  # an API error must not fail the boot: start it anyway
            log.warning("DHCP of network %s not confirmed (%s); starting the guest anyway", network_id, exc)
        (outcome.served if served else outcome.late).append(network_id)
    outcome.seconds = clock() - start
    if outcome.late:
        log.warning(
            "network(s) %s do not serve the guest's DHCP reservation after %.1f s; starting it anyway",
            ", ".join(outcome.late),
            outcome.seconds,
        )
    elif outcome.served:
        log.info("DHCP reservations of %s served after %.3f s", ", ".join(outcome.served), outcome.seconds)
    return outcome
