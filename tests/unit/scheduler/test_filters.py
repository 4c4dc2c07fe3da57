"""One row per case: a host named h1, a request, what else the snapshot knows, the verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from kumo.scheduler import filters as f

from .builders import HostBuilder, make_host, make_request, make_snapshot


@dataclass
class Case:
    id: str
    filter: f.Filter
    host: HostBuilder
    request: dict[str, Any] = field(default_factory=dict)
    groups: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    instances: Mapping[str, str] = field(default_factory=dict)
    rejects: str | None = None  # the expected reason, None when the host passes


def agg(**metadata: str) -> HostBuilder:
    return make_host("h1").aggregate(metadata)


def specs(extra_specs: dict[str, str]) -> dict[str, Any]:
    return {"flavor_extra_specs": extra_specs}


SCOPED = "aggregate_instance_extra_specs:"

CASES = [
    # IgnoreHostsFilter
    Case("ignore/not-listed", f.ignore_hosts_filter, make_host(), {"ignore_hosts": ("h2",)}),
    Case("ignore/listed", f.ignore_hosts_filter, make_host(), {"ignore_hosts": ("h1",)}, rejects=f.IGNORED),
    # ForceHostFilter
    Case("force/none", f.force_host_filter, make_host()),
    Case("force/this", f.force_host_filter, make_host(), {"force_host": "h1"}),
    Case("force/other", f.force_host_filter, make_host(), {"force_host": "h2"}, rejects=f.NOT_FORCED),
    # RequestedHostFilter (2.74's host: only it, and the other filters still run)
    Case("requested/none", f.requested_host_filter, make_host()),
    Case("requested/this", f.requested_host_filter, make_host(), {"requested_host": "h1"}),
    Case(
        "requested/other",
        f.requested_host_filter,
        make_host(),
        {"requested_host": "h2"},
        rejects=f.NOT_REQUESTED,
    ),
    # ComputeFilter
    Case("compute/up-enabled", f.compute_filter, make_host()),
    Case("compute/down", f.compute_filter, make_host().down(), rejects=f.SERVICE_DOWN),
    Case("compute/disabled", f.compute_filter, make_host().disabled(), rejects=f.SERVICE_DISABLED),
    Case("compute/down-disabled", f.compute_filter, make_host().down().disabled(), rejects=f.SERVICE_DOWN),
    # ComputeFilter for a forced host: a forced create may take a disabled host, never a down one
    Case("forced/disabled-create", f.forced_compute_filter, make_host().disabled(), {"force_disabled": True}),
    Case("forced/disabled-move", f.forced_compute_filter, make_host().disabled(), rejects=f.SERVICE_DISABLED),
    Case(
        "forced/down-create",
        f.forced_compute_filter,
        make_host().down(),
        {"force_disabled": True},
        rejects=f.SERVICE_DOWN,
    ),
    # AvailabilityZoneFilter
    Case("az/none-requested", f.availability_zone_filter, make_host().az("az1")),
    Case("az/match", f.availability_zone_filter, make_host().az("az1"), {"availability_zone": "az1"}),
    Case("az/default", f.availability_zone_filter, make_host(), {"availability_zone": "nova"}),
    Case(
        "az/other",
        f.availability_zone_filter,
        make_host().az("az1"),
        {"availability_zone": "az2"},
        rejects=f.OTHER_AZ,
    ),
    # AggregateMultiTenancyIsolation
    Case("tenant/no-aggregate", f.tenant_isolation_filter, make_host()),
    Case("tenant/unrelated-key", f.tenant_isolation_filter, agg(ssd="true")),
    Case("tenant/listed", f.tenant_isolation_filter, agg(filter_tenant_id="p1")),
    Case("tenant/comma-list", f.tenant_isolation_filter, agg(filter_tenant_id="p2, p1")),
    Case("tenant/other", f.tenant_isolation_filter, agg(filter_tenant_id="p2"), rejects=f.TENANT_ISOLATED),
    Case(
        "tenant/prefixed-key", f.tenant_isolation_filter, agg(filter_tenant_id="p2", filter_tenant_id2="p1")
    ),
    Case(
        "tenant/any-aggregate-isolates",
        f.tenant_isolation_filter,
        agg(filter_tenant_id="p2").aggregate({"ssd": "true"}),
        rejects=f.TENANT_ISOLATED,
    ),
    Case(
        "tenant/union-of-aggregates",
        f.tenant_isolation_filter,
        agg(filter_tenant_id="p2").aggregate({"filter_tenant_id": "p1"}),
    ),
    # AggregateInstanceExtraSpecsFilter
    Case("specs/none", f.aggregate_extra_specs_filter, make_host()),
    Case(
        "specs/scoped-match",
        f.aggregate_extra_specs_filter,
        agg(ssd="true"),
        specs({SCOPED + "ssd": "true"}),
    ),
    Case(
        "specs/scoped-mismatch",
        f.aggregate_extra_specs_filter,
        agg(ssd="false"),
        specs({SCOPED + "ssd": "true"}),
        rejects=f.EXTRA_SPECS_MISMATCH,
    ),
    Case(
        "specs/scoped-missing",
        f.aggregate_extra_specs_filter,
        make_host(),
        specs({SCOPED + "ssd": "true"}),
        rejects=f.EXTRA_SPECS_MISMATCH,
    ),
    Case("specs/unscoped-match", f.aggregate_extra_specs_filter, agg(ssd="true"), specs({"ssd": "true"})),
    Case(
        "specs/unscoped-missing",
        f.aggregate_extra_specs_filter,
        make_host(),
        specs({"ssd": "true"}),
        rejects=f.EXTRA_SPECS_MISMATCH,
    ),
    Case(
        "specs/other-scope-ignored",
        f.aggregate_extra_specs_filter,
        make_host(),
        specs({"hw:cpu_policy": "dedicated"}),
    ),
    Case("specs/comma-values", f.aggregate_extra_specs_filter, agg(gpu="a100,h100"), specs({"gpu": "h100"})),
    Case(
        "specs/value-from-second-aggregate",
        f.aggregate_extra_specs_filter,
        agg(gpu="a100").aggregate({"gpu": "h100"}),
        specs({"gpu": "h100"}),
    ),
    Case(
        "specs/all-must-match",
        f.aggregate_extra_specs_filter,
        agg(ssd="true", gpu="a100"),
        specs({"ssd": "true", "gpu": "h100"}),
        rejects=f.EXTRA_SPECS_MISMATCH,
    ),
    Case("specs/operator", f.aggregate_extra_specs_filter, agg(cores="16"), specs({"cores": ">= 8"})),
    # ResourcesFilter
    Case("resources/fits", f.resources_filter, make_host()),
    Case("resources/exact-fit", f.resources_filter, make_host().ram(1024, used=512)),
    Case(
        "resources/ram-short",
        f.resources_filter,
        make_host().ram(1024, used=513),
        rejects=f"{f.INSUFFICIENT} MEMORY_MB",
    ),
    Case(
        "resources/ratio-fits",
        f.resources_filter,
        make_host().vcpus(4, used=6, ratio=2.0),
        {"resources": {"VCPU": 2}},
    ),
    Case(
        "resources/ratio-short",
        f.resources_filter,
        make_host().vcpus(4, used=6, ratio=2.0),
        {"resources": {"VCPU": 3}},
        rejects=f"{f.INSUFFICIENT} VCPU",
    ),
    Case(
        "resources/reserved",
        f.resources_filter,
        make_host().ram(1024, reserved=512),
        {"resources": {"MEMORY_MB": 513}},
        rejects=f"{f.INSUFFICIENT} MEMORY_MB",
    ),
    Case(
        "resources/unknown-class",
        f.resources_filter,
        make_host(),
        {"resources": {"CUSTOM_GPU": 1}},
        rejects=f"{f.INSUFFICIENT} CUSTOM_GPU",
    ),
    Case("resources/zero-unknown-class", f.resources_filter, make_host(), {"resources": {"CUSTOM_GPU": 0}}),
    Case(
        "resources/max-unit",
        f.resources_filter,
        make_host().vcpus(16).max_unit("VCPU", 4),
        {"resources": {"VCPU": 8}},
        rejects=f"{f.ABOVE_MAX_UNIT} VCPU",
    ),
    # ServerGroupAffinityFilter
    Case("affinity/no-group", f.group_affinity_filter, make_host(), groups={"g1": {"h2": 1}}),
    Case("affinity/first-member", f.group_affinity_filter, make_host(), {"group": "affinity"}),
    Case(
        "affinity/member-here", f.group_affinity_filter, make_host(), {"group": "affinity"}, {"g1": {"h1": 1}}
    ),
    Case(
        "affinity/member-elsewhere",
        f.group_affinity_filter,
        make_host(),
        {"group": "affinity"},
        {"g1": {"h2": 1}},
        rejects=f.NOT_GROUP_HOST,
    ),
    Case(
        "affinity/soft-ignored",
        f.group_affinity_filter,
        make_host(),
        {"group": "soft-affinity"},
        {"g1": {"h2": 1}},
    ),
    # ServerGroupAntiAffinityFilter
    Case(
        "anti/elsewhere",
        f.group_anti_affinity_filter,
        make_host(),
        {"group": "anti-affinity"},
        {"g1": {"h2": 1}},
    ),
    Case(
        "anti/here",
        f.group_anti_affinity_filter,
        make_host(),
        {"group": "anti-affinity"},
        {"g1": {"h1": 1}},
        rejects=f.GROUP_HOST_FULL,
    ),
    Case(
        "anti/max-2-one-here",
        f.group_anti_affinity_filter,
        make_host(),
        {"group": ("anti-affinity", {"max_server_per_host": 2})},
        {"g1": {"h1": 1}},
    ),
    Case(
        "anti/max-2-two-here",
        f.group_anti_affinity_filter,
        make_host(),
        {"group": ("anti-affinity", {"max_server_per_host": 2})},
        {"g1": {"h1": 2}},
        rejects=f.GROUP_HOST_FULL,
    ),
    Case(
        "anti/max-as-string",
        f.group_anti_affinity_filter,
        make_host(),
        {"group": ("anti-affinity", {"max_server_per_host": "2"})},
        {"g1": {"h1": 1}},
    ),
    Case(
        "anti/other-group",
        f.group_anti_affinity_filter,
        make_host(),
        {"group": "anti-affinity"},
        {"g2": {"h1": 1}},
    ),
    Case(
        "anti/soft-ignored",
        f.group_anti_affinity_filter,
        make_host(),
        {"group": "soft-anti-affinity"},
        {"g1": {"h1": 3}},
    ),
    # SameHostFilter
    Case("same/no-hint", f.same_host_filter, make_host()),
    Case("same/here", f.same_host_filter, make_host(), {"same_host": ("i1",)}, instances={"i1": "h1"}),
    Case(
        "same/one-of-two-here",
        f.same_host_filter,
        make_host(),
        {"same_host": ("i1", "i2")},
        instances={"i1": "h2", "i2": "h1"},
    ),
    Case(
        "same/elsewhere",
        f.same_host_filter,
        make_host(),
        {"same_host": ("i1",)},
        instances={"i1": "h2"},
        rejects=f.NOT_SAME_HOST,
    ),
    Case("same/unknown", f.same_host_filter, make_host(), {"same_host": ("i1",)}, rejects=f.NOT_SAME_HOST),
    # DifferentHostFilter
    Case("different/no-hint", f.different_host_filter, make_host(), instances={"i1": "h1"}),
    Case(
        "different/here",
        f.different_host_filter,
        make_host(),
        {"different_host": ("i2", "i1")},
        instances={"i1": "h1"},
        rejects=f.HOLDS_DIFFERENT_HOST,
    ),
    Case(
        "different/elsewhere",
        f.different_host_filter,
        make_host(),
        {"different_host": ("i1",)},
        instances={"i1": "h2"},
    ),
    Case("different/unknown", f.different_host_filter, make_host(), {"different_host": ("i1",)}),
    # AggregateFlavorFilter (stock aggregates hold one flavor's machines)
    Case("flavor/no-aggregate", f.aggregate_flavor_filter, make_host(), {"flavor_id": "bm1"}),
    Case("flavor/listed", f.aggregate_flavor_filter, agg(filter_flavor_id="bm0,bm1"), {"flavor_id": "bm1"}),
    Case(
        "flavor/other",
        f.aggregate_flavor_filter,
        agg(filter_flavor_id="bm0"),
        {"flavor_id": "bm1"},
        rejects=f.FLAVOR_NOT_ALLOWED,
    ),
    # StockFilter (only with the setting; see test_stock_filters.py for the exclusive cases)
    Case("stock/not-exclusive", f.stock_filter, agg(baremetal="true", filter_flavor_id="bm1")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_filter(case: Case) -> None:
    host = case.host.build()
    snapshot = make_snapshot(host, groups=case.groups, instances=case.instances)
    result = case.filter(host, make_request(**case.request), snapshot)
    assert (result.ok, result.reason) == ((True, "") if case.rejects is None else (False, case.rejects))


def test_every_default_filter_has_cases() -> None:
    covered = {c.filter.name for c in CASES}
    assert {flt.name for flt in f.DEFAULT_FILTERS + f.FORCED_HOST_FILTERS} <= covered


@pytest.mark.parametrize(
    ("value", "requirement", "expected"),
    [
        ("true", "true", True),
        ("true", "True", False),
        ("ssd-fast", "<in> fast", True),
        ("ssd", "<in> fast", False),
        ("b", "<or> a <or> b", True),
        ("c", "<or> a <or> b", False),
        ("avx avx2", "<all-in> avx avx2", True),
        ("avx", "<all-in> avx avx2", False),
        ("x", "s== x", True),
        ("x", "s!= x", False),
        ("b", "s> a", True),
        ("b", "s<= a", False),
        ("16", "= 8", True),  # Nova: "=" means at least
        ("4", "= 8", False),
        ("8", "== 8.0", True),
        ("8", "!= 8", False),
        ("4", "<= 8", True),
        ("fast", ">= 8", False),  # non-numeric value never matches a numeric operator
        ("8", ">=", False),  # operator without operand
    ],
)
def test_match_extra_spec(value: str, requirement: str, expected: bool) -> None:
    assert f.match_extra_spec(value, requirement) is expected
