"""The agent's periodic power sync outlives a hypervisor that is down for a while."""

from __future__ import annotations

import threading
from typing import Any

from kumo.agent.agent import Agent
from kumo.agent.drivers.base import DriverError
from kumo.agent.drivers.fake import FakeDriver


class FlakyDriver(FakeDriver):
    def __init__(self) -> None:
        super().__init__("flaky")
        self.calls = 0

    def power_states(self) -> dict[str, int]:
        self.calls += 1
        if self.calls <= 2:
            raise DriverError("Cannot connect to libvirt at qemu+tcp://10.0.0.1/system: refused")
        return {"i-1": 1}


def test_power_sync_keeps_going_after_driver_errors() -> None:
    agent = Agent("http://127.0.0.1:9", "flaky", FlakyDriver(), "t", power_sync_interval=0.01)
    sent: list[dict[str, Any]] = []
    done = threading.Event()

    def call(method: str, path: str, **kwargs: Any) -> None:
        sent.append(kwargs["json"])
        done.set()

    agent._call = call  # type: ignore[method-assign]
    thread = threading.Thread(target=agent._power_sync_loop, daemon=True)
    thread.start()
    assert done.wait(5)
    agent.stop_event.set()
    thread.join(5)
    assert sent[0] == {"states": {"i-1": 1}}  # reported once the hypervisor answered again
