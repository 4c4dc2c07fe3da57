"""The node provision state machine: Ironic's paths, and refusals with Ironic's wording."""

from __future__ import annotations

import pytest

from kumo.baremetal import states as s
from kumo.errors import BadRequest


def walk(start: str, *events: str) -> str:
    state = start
    for event in events:
        state = s.advance(state, event, "n1")
    return state


@pytest.mark.parametrize(
    ("start", "events", "end"),
    [
        (s.ENROLL, (s.MANAGE, s.DONE), s.MANAGEABLE),
        (s.ENROLL, (s.MANAGE, s.FAIL), s.ENROLL),
        (s.MANAGEABLE, (s.PROVIDE, s.DONE), s.AVAILABLE),
        (s.MANAGEABLE, (s.PROVIDE, s.FAIL), s.CLEAN_FAILED),
        (s.CLEAN_FAILED, (s.MANAGE, s.PROVIDE, s.DONE), s.AVAILABLE),
        (s.AVAILABLE, (s.DEPLOY, s.DONE), s.ACTIVE),
        (s.AVAILABLE, (s.DEPLOY, s.FAIL), s.DEPLOY_FAILED),
        (s.DEPLOY_FAILED, (s.UNDEPLOY, s.DONE, s.DONE), s.AVAILABLE),
        (s.ACTIVE, (s.UNDEPLOY, s.DONE), s.CLEANING),
        (s.ACTIVE, (s.UNDEPLOY, s.DONE, s.DONE), s.AVAILABLE),
        (s.ACTIVE, (s.UNDEPLOY, s.FAIL), s.ERROR),
        (s.ERROR, (s.UNDEPLOY, s.DONE, s.DONE), s.AVAILABLE),
        (s.ACTIVE, (s.REBUILD, s.DONE), s.ACTIVE),
        (s.MANAGEABLE, (s.ADOPT, s.DONE), s.ACTIVE),
        (s.MANAGEABLE, (s.ADOPT, s.FAIL), s.ADOPT_FAILED),
        (s.ADOPT_FAILED, (s.ADOPT, s.DONE), s.ACTIVE),
        (s.AVAILABLE, (s.MANAGE,), s.MANAGEABLE),
    ],
)
def test_paths(start: str, events: tuple[str, ...], end: str) -> None:
    assert walk(start, *events) == end


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (s.ENROLL, s.PROVIDE),  # must be verified first
        (s.ENROLL, s.DEPLOY),
        (s.MANAGEABLE, s.DEPLOY),  # only available nodes take servers
        (s.ACTIVE, s.MANAGE),
        (s.ACTIVE, s.PROVIDE),
        (s.AVAILABLE, s.ADOPT),
        (s.DEPLOYING, s.MANAGE),
        (s.CLEANING, s.DEPLOY),
    ],
)
def test_refusals_are_400s_in_ironic_words(state: str, event: str) -> None:
    assert not s.can(state, event)
    with pytest.raises(BadRequest) as err:
        s.advance(state, event, "node-1")
    assert f'The requested action "{event}" can not be performed on node "node-1"' in err.value.message
    assert f'while it is in state "{state}"' in err.value.message


def test_every_transient_state_has_a_way_out_and_a_target() -> None:
    for state in s.TRANSIENT:
        assert s.can(state, s.DONE) and s.can(state, s.FAIL), state
        assert s.target_of(state) in s.STABLE


def test_table_only_names_known_states() -> None:
    for t in s.TRANSITIONS:
        assert t.source in s.ALL and t.target in s.ALL


def test_only_available_nodes_outside_maintenance_are_offered() -> None:
    assert s.offered(s.AVAILABLE, maintenance=False)
    assert not s.offered(s.AVAILABLE, maintenance=True)
    assert not any(s.offered(state, False) for state in s.ALL - {s.AVAILABLE})
