"""`kumo up` stopping (kumo/allinone.py:stop_all) leaves no firewall rule of its agents on the
machine: each agent that enforced security groups tears its firewall down (kumo's chains only);
one that cannot does not stop the others, nor the API."""

from __future__ import annotations

from typing import cast

from kumo import allinone
from kumo.agent.agent import Agent
from kumo.agent.drivers.fake import FakeDriver
from kumo.agent.firewall_sync import FirewallSync
from kumo.agent.network.run import NetworkError
from kumo.agent.network.spec import PortFirewall
from kumo.server import ThreadedServer
from tests.unit.agent.test_firewall_sync import RecordingFirewall


class Waker:
    def __init__(self) -> None:
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


class StoppedServer:
    """What stop_all touches of the API: its runtime's waker, and stop()."""

    def __init__(self) -> None:
        self.stopped = False
        self.rt = self
        self.waker = Waker()

    def stop(self) -> None:
        self.stopped = True


class Stuck(RecordingFirewall):
    def teardown(self) -> None:
        raise NetworkError("iptables-restore: permission denied")


def agent(name: str, firewall: RecordingFirewall | None) -> Agent:
    sync = FirewallSync(firewall, exists=lambda tap: False) if firewall is not None else None
    return Agent("http://127.0.0.1:9", name, FakeDriver(name), "token", firewall=sync)


def test_stop_all_removes_every_agents_firewall_rules() -> None:
    rules = [PortFirewall("65c0ee9f-d6aa", "fa:16:3e:00:00:01", ("10.0.0.5",))]
    first, second, stuck = RecordingFirewall(), RecordingFirewall(), Stuck()
    for fw in (first, second, stuck):
        fw.apply(rules)
    server = StoppedServer()
    agents = [agent("hv-1", first), agent("hv-2", stuck), agent("hv-3", second), agent("hv-4", None)]
    allinone.stop_all(cast(ThreadedServer, server), agents)
    assert first.taps() == set() and second.taps() == set()
    assert stuck.taps() == {"tap65c0ee9f-d6"}  # reported, and the others went on
    assert server.waker.stopped and server.stopped
