"""Time the security-group firewall's applies (iptables + ebtables + conntrack cuts) for N ports.

Run as root inside a scratch network namespace, so the host's tables are untouched:

    ip netns add fwbench && ip netns exec fwbench env PYTHONPATH=. .venv/bin/python \
        bench/firewall_apply.py --ports 200; ip netns del fwbench
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from kumo.agent.network.firewall.ebtables import BridgeGuard
from kumo.agent.network.firewall.iptables import IptablesFirewall
from kumo.agent.network.spec import PortFirewall, Rule

SSH = Rule("ingress", protocol="tcp", port_range_min=22, port_range_max=22)


def ports(n: int, *rules: Rule) -> list[PortFirewall]:
    return [
        PortFirewall(
            f"{i:011x}",
            f"fa:16:3e:00:{i // 256:02x}:{i % 256:02x}",
            (f"10.9.{i // 256}.{i % 256}",),
            rules=rules,
        )
        for i in range(1, n + 1)
    ]


def timed(what: str, call: Callable[[list[PortFirewall]], None], arg: list[PortFirewall]) -> None:
    start = time.perf_counter()
    call(arg)
    print(f"{what}: {(time.perf_counter() - start) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", type=int, default=200)
    n = parser.parse_args().ports
    firewall = IptablesFirewall()
    try:
        full = ports(n, Rule("egress"), SSH)
        timed(f"first apply of {n} ports", firewall.apply, full)
        timed(f"re-apply of {n} unchanged ports", firewall.apply, full)
        timed("apply of one port", firewall.apply, full[:1])
        timed(f"ebtables part alone, {n} ports", BridgeGuard().apply, full)
        timed(f"{n} ports each losing a rule (conntrack cuts)", firewall.apply, ports(n, Rule("egress")))
    finally:
        firewall.teardown()


if __name__ == "__main__":
    main()
