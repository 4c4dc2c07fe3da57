"""kumo/agent/dhcp_wait.py: which generation each network must serve before a guest starts,
and the bounded wait that never fails a boot."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kumo.agent.dhcp_wait import await_served, wanted_generations


def port(network_id: object, generation: object) -> dict[str, Any]:
    return {"id": "p", "network_id": network_id, "dhcp_generation": generation}


def test_each_network_waits_for_the_highest_generation_of_its_ports() -> None:
    instance = {"ports": [port("n1", 3), port("n2", 7), port("n1", 5), port("n3", None), port(None, 2)]}
    assert wanted_generations(instance) == {"n1": 5, "n2": 7}
    assert wanted_generations({"ports": [port("n1", True), "junk"]}) == {}
    assert wanted_generations({}) == {}


class Clock:
    """A fake monotonic clock; `ask` advances it by the wait it was given when unserved."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.now += seconds


class Api:
    """The long poll, faked: each network's host applies the wanted generation at a given time
    on the clock; an ask holds until then or until its wait ends. Records every (network,
    generation, wait) asked."""

    def __init__(self, clock: Clock, ready_at: dict[str, float], answer_early: bool = False) -> None:
        self.clock, self.ready_at, self.answer_early = clock, ready_at, answer_early
        self.asks: list[tuple[str, int, int]] = []

    def __call__(self, network_id: str, generation: int, wait: int) -> Mapping[str, Any]:
        self.asks.append((network_id, generation, wait))
        ready = self.ready_at[network_id]
        if self.clock.now < ready and not self.answer_early:
            self.clock.now = min(ready, self.clock.now + wait)
        return {"served": self.clock.now >= ready}


def test_served_networks_cost_one_ask_each() -> None:
    clock = Clock()
    api = Api(clock, {"n1": 0, "n2": 0})
    outcome = await_served(api, {"ports": [port("n1", 5), port("n2", 8)]}, 30, clock, clock.pause)
    assert (outcome.served, outcome.late, outcome.seconds) == (["n1", "n2"], [], 0.0)
    assert api.asks == [("n1", 5, 30), ("n2", 8, 30)]


def test_a_late_host_is_waited_for_within_the_budget() -> None:
    clock = Clock()
    api = Api(clock, {"n1": 104.5, "n2": 106.0})  # applied 4.5 s and 6 s from now
    outcome = await_served(api, {"ports": [port("n1", 5), port("n2", 2)]}, 30, clock, clock.pause)
    assert outcome.served == ["n1", "n2"] and not outcome.late and outcome.seconds == 6.0
    assert api.asks == [("n1", 5, 30), ("n2", 2, 26)]  # one long poll each, the budget shared


def test_the_budget_bounds_the_whole_wait_and_the_guest_starts_anyway() -> None:
    clock = Clock()
    api = Api(clock, {"n1": 1000.0, "n2": 1000.0})
    outcome = await_served(api, {"ports": [port("n1", 4), port("n2", 4)]}, 2.5, clock, clock.pause)
    assert outcome.late == ["n1", "n2"] and not outcome.served
    assert api.asks[0] == ("n1", 4, 3)  # whole seconds, rounded up
    assert all(wait == 0 for _, _, wait in api.asks[1:])  # nothing left for the second network
    assert outcome.seconds == 3.0


def test_an_api_answering_before_its_wait_is_asked_again_after_a_pause() -> None:
    clock = Clock()
    api = Api(clock, {"n1": 100.19}, answer_early=True)
    outcome = await_served(api, {"ports": [port("n1", 1)]}, 30, clock, clock.pause)
    assert outcome.served == ["n1"] and len(api.asks) == 5  # 4 pauses of 0.05 s


def test_an_api_error_never_fails_the_boot() -> None:
    clock = Clock()

    def broken(network_id: str, generation: int, wait: int) -> Mapping[str, Any]:
        raise ConnectionError("refused")

    outcome = await_served(broken, {"ports": [port("n1", 1)]}, 30, clock, clock.pause)
    assert outcome.late == ["n1"] and not outcome.served
