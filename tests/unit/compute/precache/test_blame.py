"""Which holders a failed copy blames: the planner avoids them for that host's next attempt (or
grants its rack an origin copy), so a receiver's own failure must cost no healthy holder."""

from __future__ import annotations

from kumo.compute.precache import service
from kumo.work.models import Task

PLANNED = Task(payload={"sources": [{"source": "peer:h2"}, {"source": "peer:h3"}, {"source": "origin"}]})


def test_the_senders_the_agent_names_are_blamed() -> None:
    assert service._blamed({"failed_sources": ["peer:h3"]}, PLANNED) == ("peer:h3",)


def test_a_receivers_own_failure_blames_no_one() -> None:
    assert service._blamed({"failed_sources": []}, PLANNED) == ()


def test_an_agent_that_does_not_say_blames_every_planned_source() -> None:
    assert service._blamed({"error": "copy failed"}, PLANNED) == ("peer:h2", "peer:h3", "origin")
    assert service._blamed({}, None) == ()


def test_an_agent_blames_only_sources_its_task_planned() -> None:
    said = {"failed_sources": ["peer:h9", "origin", "peer:h2"]}
    assert service._blamed(said, PLANNED) == ("peer:h2", "origin")
