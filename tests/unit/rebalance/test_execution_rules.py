"""The executor's pure rules (pre-conditions, a migration's outcome), the request-body rules of
Watcher's API (state patches, intervals, policy parameters) and its microversion header."""

from __future__ import annotations

from typing import Any

import pytest

from kumo.compute.models import ComputeHost, Instance
from kumo.db.base import utcnow
from kumo.errors import BadRequest, NotAcceptable
from kumo.rebalance import core, microversion
from kumo.rebalance import service as svc
from kumo.rebalance.executor import migration_outcome, precondition
from kumo.rebalance.snapshot import Scope, policy_from, scope_from

PARAMS = {"resource_id": "s1", "source_node": "a", "destination_node": "b"}


def server(**kw: Any) -> Instance:
    fields: dict[str, Any] = {
        "uuid": "s1",
        "host": "a",
        "vm_state": "active",
        "task_state": None,
        "locked": False,
        "deleted": False,
        "metadata_": {},
        "fault": None,
    }
    return Instance(**{**fields, **kw})


def dest(**kw: Any) -> ComputeHost:
    return ComputeHost(
        **{"name": "b", "disabled": False, "forced_down": False, "last_heartbeat": utcnow(), **kw}
    )


@pytest.mark.parametrize(
    ("instance", "host", "expect"),
    [
        (server(), {}, None),
        (None, {}, (svc.SKIPPED, "no longer exists")),
        (server(deleted=True), {}, (svc.SKIPPED, "no longer exists")),
        (server(host="c"), {}, (svc.SKIPPED, "no longer on a")),
        (server(vm_state="stopped"), {}, (svc.SKIPPED, "not ACTIVE")),
        (server(task_state="migrating"), {}, (svc.SKIPPED, "task in flight")),
        (server(locked=True), {}, (svc.SKIPPED, "locked")),
        (server(metadata_={"kumo:rebalance": "never"}), {}, (svc.SKIPPED, core.EXCLUDED)),
        (server(), None, (svc.FAILED, "no longer exists")),
        (server(), {"disabled": True}, (svc.FAILED, "disabled or down")),
        (server(), {"forced_down": True}, (svc.FAILED, "disabled or down")),
        (server(), {"last_heartbeat": None}, (svc.FAILED, "disabled or down")),
    ],
)
def test_precondition(
    instance: Instance | None, host: dict[str, Any] | None, expect: tuple[str, str] | None
) -> None:
    # the destination is built when the test runs: its heartbeat is fresh then, however long
    # after collection that is
    got = precondition(instance, None if host is None else dest(**host), PARAMS)
    if expect is None:
        assert got is None
    else:
        assert got is not None and got.state == expect[0] and expect[1] in got.message


@pytest.mark.parametrize(
    ("instance", "expect"),
    [
        (server(task_state="migrating"), None),  # still running
        (server(host="b"), svc.SUCCEEDED),
        (server(host="a", fault={"message": "connection lost"}), svc.FAILED),
        (server(host="b", vm_state="error"), svc.FAILED),
        (None, svc.FAILED),
    ],
)
def test_migration_outcome(instance: Instance | None, expect: str | None) -> None:
    got = migration_outcome(instance, PARAMS)
    assert (got.state if got else None) == expect


def test_failed_outcome_says_why() -> None:
    got = migration_outcome(server(fault={"message": "connection lost"}), PARAMS)
    assert got is not None and "connection lost" in got.message


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        ([{"op": "replace", "path": "/state", "value": "CANCELLED"}], ("CANCELLED", None)),
        (
            [
                {"op": "replace", "path": "/state", "value": "skipped"},
                {"op": "replace", "path": "/status_message", "value": "not now"},
            ],
            ("SKIPPED", "not now"),
        ),
        ([], BadRequest),
        ({"state": "CANCELLED"}, BadRequest),
        ([{"op": "remove", "path": "/state"}], BadRequest),
        ([{"op": "replace", "path": "/name", "value": "x"}], BadRequest),
        ([{"op": "replace", "path": "/status_message", "value": "x"}], BadRequest),  # no state
    ],
)
def test_state_from_patch(body: Any, expect: Any) -> None:
    if expect is BadRequest:
        with pytest.raises(BadRequest):
            svc.state_from_patch(body)
    else:
        assert svc.state_from_patch(body) == expect


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        (None, None),
        (60, 60),
        ("120", 120),
        ("*/5 * * * *", BadRequest),
        (0, BadRequest),
        ("9" * 40, BadRequest),
        (True, BadRequest),
    ],
)
def test_interval(value: Any, expect: Any) -> None:
    if expect is BadRequest:
        with pytest.raises(BadRequest):
            svc._interval(value)
    else:
        assert svc._interval(value) == expect


@pytest.mark.parametrize(
    ("parameters", "expect"),
    [
        ({}, core.Policy()),
        ({"per_plan": 3, "candidates": "victims"}, core.Policy(per_plan=3, candidates="victims")),
        ({"clear_steal_pct": 1, "cooldown_s": 60.5}, core.Policy(clear_steal_pct=1.0, cooldown_s=60.5)),
        ({"same_az": False}, core.Policy(same_az=False)),
        ({"per_cloud": 2**31 - 1}, core.Policy(per_cloud=2**31 - 1)),
        ({"trigger_steal_pct": 10}, BadRequest),  # acts at signal time, cloud-wide: refused
        ({"busy": 0.5}, BadRequest),
        ({"cooldown_s": float("nan")}, BadRequest),
        ({"cooldown_s": float("inf")}, BadRequest),
        ({"cooldown_s": 1e300}, BadRequest),
        ({"per_plan": 1.5}, BadRequest),  # an int field takes a real int only
        ({"per_plan": 3.0}, BadRequest),
        ({"per_plan": 2**31}, BadRequest),
        ({"per_plan": 10**400}, BadRequest),
        ({"role_key": "r" * 256}, BadRequest),
        ({"nope": 1}, BadRequest),
        ({"per_plan": "3"}, BadRequest),
        ({"per_plan": -1}, BadRequest),
        ({"same_az": 1}, BadRequest),
        ({"candidates": "some"}, BadRequest),
    ],
)
def test_policy_from(parameters: dict[str, Any], expect: Any) -> None:
    """Each parameter a finite, bounded value of its field's type; signal-time fields refused."""
    if expect is BadRequest:
        with pytest.raises(BadRequest):
            policy_from(parameters)
    else:
        assert policy_from(parameters) == expect


@pytest.mark.parametrize(
    ("header", "expect"),
    [
        ("", (1, 0)),
        ("infra-optim 1.5", (1, 5)),
        ("compute 2.1, infra-optim 1.2", (1, 2)),
        ("infra-optim latest", (1, 5)),
        ("infra-optim 1.7", NotAcceptable),
        ("infra-optim 2.0", NotAcceptable),
        ("infra-optim 1." + "9" * 30, NotAcceptable),
    ],
)
def test_microversion(header: str, expect: Any) -> None:
    headers = {"openstack-api-version": header} if header else {}
    if expect is NotAcceptable:
        with pytest.raises(NotAcceptable):
            microversion.parse(headers)
    else:
        assert microversion.parse(headers) == expect


@pytest.mark.parametrize(
    ("scope", "expect"),
    [
        ([], Scope()),
        (
            [{"compute": [{"availability_zones": [{"name": "az1"}, {"name": "az2"}]}]}],
            Scope(zones=frozenset({"az1", "az2"})),
        ),
        (
            [
                {
                    "compute": [
                        {
                            "exclude": [
                                {"instances": [{"uuid": "i1"}]},
                                {"compute_nodes": [{"name": "h1"}]},
                                {"projects": [{"uuid": "p1"}]},
                            ]
                        }
                    ]
                }
            ],
            Scope(instances=frozenset({"i1"}), hosts=frozenset({"h1"}), projects=frozenset({"p1"})),
        ),
        ([{"compute": [{"host_aggregates": [{"id": 1}]}]}], Scope()),  # accepted, not applied
        ([{"storage": []}], Scope()),
        ({"compute": []}, BadRequest),
        ([{"compute": ["az1"]}], BadRequest),
        ([{"compute": [{"availability_zones": 5}]}], BadRequest),
        ([{"compute": [{"exclude": [{"instances": "i1"}]}]}], BadRequest),
    ],
)
def test_scope_from(scope: Any, expect: Any) -> None:
    if expect is BadRequest:
        with pytest.raises(BadRequest):
            scope_from(scope)
    else:
        assert scope_from(scope) == expect
