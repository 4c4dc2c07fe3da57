"""The node state machine, in one place: Ironic's provision states, the events that move a node
between them, and power states.

`advance(state, event)` is the only way a node's provision state changes. A transition that the
table does not list is a 400 with Ironic's wording (its InvalidStateRequested; a 409 would make
python-ironicclient retry for ten seconds). The table is Ironic's (ironic/common/states.py)
cut down to what kumo does: no inspection, rescue or servicing.
"""

from __future__ import annotations

from dataclasses import dataclass

from kumo.errors import BadRequest

# Stable states: a node rests here until someone acts.
ENROLL = "enroll"
MANAGEABLE = "manageable"
AVAILABLE = "available"
ACTIVE = "active"
ERROR = "error"
CLEAN_FAILED = "clean failed"
DEPLOY_FAILED = "deploy failed"
ADOPT_FAILED = "adopt failed"
# Transient states: a task for the node's conductor is in flight.
VERIFYING = "verifying"
CLEANING = "cleaning"
DEPLOYING = "deploying"
DEPLOY_WAIT = "wait call-back"
DELETING = "deleting"
ADOPTING = "adopting"

STABLE = frozenset({ENROLL, MANAGEABLE, AVAILABLE, ACTIVE, ERROR, CLEAN_FAILED, DEPLOY_FAILED, ADOPT_FAILED})
TRANSIENT = frozenset({VERIFYING, CLEANING, DEPLOYING, DEPLOY_WAIT, DELETING, ADOPTING})
ALL = STABLE | TRANSIENT

POWER_ON = "power on"
POWER_OFF = "power off"
REBOOTING = "rebooting"
SOFT_POWER_OFF = "soft power off"
SOFT_REBOOTING = "soft rebooting"
POWER_STATES = frozenset({POWER_ON, POWER_OFF})
# What `PUT /nodes/{n}/states/power` accepts as a target.
POWER_TARGETS = frozenset({POWER_ON, POWER_OFF, REBOOTING, SOFT_POWER_OFF, SOFT_REBOOTING})

# Events. The first group are the verbs of `PUT /nodes/{n}/states/provision` (`target`); the
# second is what the API does on its own (a server lands on the node, a conductor reports).
MANAGE = "manage"
PROVIDE = "provide"
ADOPT = "adopt"
DEPLOY = "deploy"  # a server is spawned on the node
REBUILD = "rebuild"
UNDEPLOY = "deleted"  # Ironic's verb: tear the instance down
DONE = "done"
FAIL = "fail"
# The verbs the API accepts, as Ironic spells them (`active` is Ironic's deploy verb).
API_VERBS = frozenset({MANAGE, PROVIDE, ADOPT, "active", REBUILD, UNDEPLOY, "undeploy"})


@dataclass(frozen=True)
class Transition:
    source: str
    event: str
    target: str


def _t(source: str, event: str, target: str) -> Transition:
    return Transition(source, event, target)


TRANSITIONS: tuple[Transition, ...] = (
    # enrolment: check the BMC answers
    _t(ENROLL, MANAGE, VERIFYING),
    _t(VERIFYING, DONE, MANAGEABLE),
    _t(VERIFYING, FAIL, ENROLL),
    # make available: clean (power off, boot from disk)
    _t(MANAGEABLE, PROVIDE, CLEANING),
    _t(CLEANING, DONE, AVAILABLE),
    _t(CLEANING, FAIL, CLEAN_FAILED),
    _t(CLEAN_FAILED, MANAGE, MANAGEABLE),
    _t(AVAILABLE, MANAGE, MANAGEABLE),
    # adoption: take a running machine as it is
    _t(MANAGEABLE, ADOPT, ADOPTING),
    _t(ADOPTING, DONE, ACTIVE),
    _t(ADOPTING, FAIL, ADOPT_FAILED),
    _t(ADOPT_FAILED, ADOPT, ADOPTING),
    _t(ADOPT_FAILED, MANAGE, MANAGEABLE),
    # deployment of a server
    _t(AVAILABLE, DEPLOY, DEPLOYING),
    _t(DEPLOYING, DONE, ACTIVE),
    _t(DEPLOYING, FAIL, DEPLOY_FAILED),
    _t(DEPLOY_WAIT, DONE, ACTIVE),
    _t(DEPLOY_WAIT, FAIL, DEPLOY_FAILED),
    _t(ACTIVE, REBUILD, DEPLOYING),
    _t(DEPLOY_FAILED, REBUILD, DEPLOYING),
    # teardown: deleting (power off), then cleaning, then available
    _t(ACTIVE, UNDEPLOY, DELETING),
    _t(DEPLOY_FAILED, UNDEPLOY, DELETING),
    _t(DEPLOYING, UNDEPLOY, DELETING),  # a server deleted mid-deploy
    _t(DEPLOY_WAIT, UNDEPLOY, DELETING),
    _t(ERROR, UNDEPLOY, DELETING),
    _t(DELETING, DONE, CLEANING),
    _t(DELETING, FAIL, ERROR),
)

_TABLE: dict[tuple[str, str], str] = {(t.source, t.event): t.target for t in TRANSITIONS}

# Where a transient state is heading (Ironic's target_provision_state).
TARGETS: dict[str, str] = {
    VERIFYING: MANAGEABLE,
    CLEANING: AVAILABLE,
    DEPLOYING: ACTIVE,
    DEPLOY_WAIT: ACTIVE,
    DELETING: AVAILABLE,
    ADOPTING: ACTIVE,
}


def can(state: str, event: str) -> bool:
    return (state, event) in _TABLE


def advance(state: str, event: str, node: str = "") -> str:
    """The state after `event`, or BadRequest (400) in Ironic's words."""
    target = _TABLE.get((state, event))
    if target is None:
        raise BadRequest(
            f'The requested action "{event}" can not be performed on node "{node}" '
            f'while it is in state "{state}".'
        )
    return target


def target_of(state: str) -> str | None:
    return TARGETS.get(state)


def offered(state: str, maintenance: bool) -> bool:
    """May the scheduler pick the node (its one unit not reserved)?"""
    return state == AVAILABLE and not maintenance
