"""Every call of kumo/agent/network/firewall/iptables.py that takes the xtables lock waits for it
(`-w`) rather than failing while another program (Docker, libvirt, a second agent's converge)
holds it: applying, removing and tearing down, over a recording `run`."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from kumo.agent.network.firewall import iptables
from kumo.agent.network.firewall.iptables import IptablesFirewall
from kumo.agent.network.spec import PortFirewall, Rule

PORT = PortFirewall("65c0ee9f-d6aa", "fa:16:3e:c9:cb:f0", ("10.0.0.5",), rules=(Rule("egress"),))
SAVED = ":kumo-fw - [0:0]\n:kumo-i-65c0ee9f-d6 - [0:0]\n-A FORWARD -j kumo-fw\n"


def test_every_locking_call_waits_for_the_xtables_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def run(argv: Sequence[str], stdin: str | None = None, **_: object) -> str:
        calls.append(list(argv))
        return SAVED if argv[0].endswith("-save") else ""

    monkeypatch.setattr(iptables, "run", run)
    firewall = IptablesFirewall()
    firewall.apply([PORT])
    firewall.remove(["tap65c0ee9f-d6"])
    firewall.teardown()
    locking = [argv for argv in calls if not argv[0].endswith("-save")]  # -save reads, no lock
    assert {argv[0] for argv in locking} == {"iptables", "iptables-restore", "ip6tables", "ip6tables-restore"}
    assert [argv for argv in locking if argv[1] != "-w"] == []
