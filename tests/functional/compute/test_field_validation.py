"""Per-field validation of the compute API's bodies, query strings and path ids (issue 15).

One request, one expectation per case: refused input is a 400 (or Nova's 404 for an unknown
id) in Nova's error body, never a 500. The table runs on SQLite and PostgreSQL (where oversized
integers overflowed the INTEGER columns)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from kumo.compute.models import Instance
from kumo.db import Database
from tests.functional.field_validation import (
    BACKENDS,
    Case,
    FieldCloud,
    run_case,
    serve_field_cloud,
    setup_boot,
)

API = "/compute/v2.1"
NOWHERE = "00000000-0000-0000-0000-000000000000"
HUGE = 10**20
BIG = "99999999999999999999"
ACTION = f"{API}/servers/{NOWHERE}/action"
SPECS = API + "/flavors/{flavor}/os-extra_specs"


@pytest.fixture(scope="module", params=BACKENDS)
def field_cloud(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FieldCloud]:
    yield from serve_field_cloud(request, tmp_path_factory)


def _specs(specs: dict[str, Any]) -> dict[str, Any]:
    return {"extra_specs": specs}


def _boot(**fields: Any) -> dict[str, Any]:
    defaults = {"name": "vm", "flavorRef": "{flavor}", "imageRef": "{image}", "networks": "none"}
    return {"server": {**fields, **{k: v for k, v in defaults.items() if k not in fields}}}


CASES = [
    # 1. flavor extra specs the scheduler interprets are validated on write
    Case("POST", SPECS, _specs({"resources:VCPU": "abc"}), 400),
    Case("POST", SPECS, _specs({"resources:VCPU": "-1"}), 400),
    Case("POST", SPECS, _specs({"resources:VCPU": "1.5"}), 400),
    Case("POST", SPECS, _specs({"resources:VCPU": str(2**31)}), 400),
    Case("POST", SPECS, _specs({"resources:NOT_A_CLASS": "1"}), 400),
    Case("POST", SPECS, _specs({"resources:custom_lower": "1"}), 400),
    Case("POST", SPECS, _specs({"trait:HW_CPU_X86_AVX2": "maybe"}), 400),
    Case("POST", SPECS, _specs({"trait:NOT_A_TRAIT": "required"}), 400),
    Case("POST", SPECS, _specs({"aggregate_instance_extra_specs:ssd": ["true"]}), 400),
    Case("POST", SPECS, _specs({"hw:cpu_policy": "a\x01b"}), 400),
    Case("POST", SPECS, _specs({"quota:x": "v" * 256}), 400),
    Case("PUT", SPECS + "/resources:VCPU", {"resources:VCPU": "abc"}, 400),
    Case("PUT", SPECS + "/trait:CUSTOM_FOO", {"trait:CUSTOM_FOO": "yes"}, 400),
    Case("POST", SPECS, _specs({"resources:VCPU": "2", "resources:CUSTOM_GPU": 1}), 200),
    Case("POST", SPECS, _specs({"resources1:VGPU": "1", "trait1:CUSTOM_FOO": "forbidden"}), 200),
    Case("POST", SPECS, _specs({"trait:HW_CPU_X86_AVX2": "required", "hw:cpu_policy": "dedicated"}), 200),
    Case("PUT", SPECS + "/resources:DISK_GB", {"resources:DISK_GB": "0"}, 200),
    # 2. min_count / max_count
    Case("POST", API + "/servers", _boot(min_count=1e20), 400),
    Case("POST", API + "/servers", _boot(min_count=HUGE), 400),
    Case("POST", API + "/servers", _boot(max_count=HUGE), 400),
    Case("POST", API + "/servers", _boot(min_count=1.5), 400),
    Case("POST", API + "/servers", _boot(min_count="1e3"), 400),
    Case("POST", API + "/servers", _boot(min_count=0), 400),
    Case("POST", API + "/servers", _boot(min_count=True), 400),
    Case("POST", API + "/servers", _boot(min_count=3, max_count=2), 400),
    Case("POST", API + "/servers", _boot(max_count=1001), 400),
    # 3. oversized integers: limits, path ids, flavor sizes, quota values
    Case("GET", API + "/servers?limit=" + BIG, None, 200),
    Case("GET", API + "/servers/detail?limit=" + BIG, None, 200),
    Case("GET", API + "/flavors?limit=" + BIG, None, 200),
    Case("GET", API + "/flavors?minRam=" + BIG, None, 400),
    Case("GET", API + "/flavors?minDisk=" + BIG, None, 400),
    Case("GET", API + "/os-hypervisors?limit=" + BIG, None, 200),
    Case("GET", API + "/os-hypervisors/" + BIG, None, 404, microversion="2.1"),
    Case("GET", API + "/os-hypervisors/" + BIG + "/uptime", None, 404, microversion="2.1"),
    Case("GET", API + "/os-hypervisors?marker=" + BIG, None, 400, microversion="2.33"),
    Case("GET", API + "/os-aggregates/" + BIG, None, 404),  # names no aggregate (Nova, tempest)
    Case("PUT", API + "/os-services/" + BIG, {"status": "disabled"}, 404, microversion="2.1"),
    Case("GET", API + "/os-server-groups?limit=" + BIG, None, 200),
    Case("GET", API + "/os-server-groups?offset=" + BIG, None, 200),
    Case("GET", API + "/os-keypairs?limit=" + BIG, None, 200, microversion="2.35"),
    Case("GET", API + f"/servers/{NOWHERE}/os-instance-actions?limit=" + BIG, None, 404, microversion="2.58"),
    Case("POST", API + "/flavors", {"flavor": {"name": "f", "vcpus": HUGE, "ram": 1, "disk": 1}}, 400),
    Case("POST", API + "/flavors", {"flavor": {"name": "f", "vcpus": 1, "ram": 2**31, "disk": 1}}, 400),
    Case(
        "POST",
        API + "/flavors",
        {"flavor": {"name": "f", "vcpus": 1, "ram": 1, "disk": 1, "swap": HUGE}},
        400,
    ),
    Case(
        "POST",
        API + "/flavors",
        {"flavor": {"name": "f", "vcpus": 1, "ram": 1, "disk": 1, "rxtx_factor": 1e300}},
        400,
    ),
    Case("PUT", API + "/os-quota-sets/{project}", {"quota_set": {"instances": HUGE}}, 400),
    Case("PUT", API + "/os-quota-sets/{project}", {"quota_set": {"cores": 2**31}}, 400),
    Case("PUT", API + "/os-quota-class-sets/default", {"quota_class_set": {"ram": HUGE}}, 400),
    # 4. a number where a string is expected, a list where a scalar is
    Case("POST", API + "/servers", _boot(availability_zone=5), 400),
    Case("POST", API + "/servers", _boot(availability_zone=["nova"]), 400),
    Case("POST", API + "/servers", _boot(key_name=5), 400),
    Case("POST", API + "/servers", _boot(name=5), 400),
    Case("POST", API + "/servers", _boot(flavorRef=5.5), 400),
    Case("POST", API + "/servers", _boot(imageRef=["x"]), 400),
    Case("POST", API + "/servers", _boot(metadata={"k": 5}), 400),
    Case("POST", API + "/servers", _boot(user_data=5), 400),
    Case("POST", API + "/servers", _boot(accessIPv4=5), 400),
    Case("POST", API + "/servers", _boot(tags="abc"), 400),
    Case("POST", API + "/servers", _boot(tags=[5]), 400),
    Case("POST", API + "/servers", _boot(description=5), 400),
    Case("POST", API + "/servers", _boot(config_drive=["x"]), 400),
    Case("PUT", API + f"/servers/{NOWHERE}", {"server": {"accessIPv4": 5}}, 400),
    Case("POST", ACTION, {"os-migrateLive": {"host": ["a", "b"], "block_migration": "auto"}}, 400),
    Case("POST", ACTION, {"os-migrateLive": {"host": 5, "block_migration": "auto"}}, 400),
    Case("POST", ACTION, {"migrate": {"host": ["a"]}}, 400, microversion="2.56"),
    Case("POST", ACTION, {"reboot": {"type": ["HARD"]}}, 400),
    Case("POST", ACTION, {"rebuild": {"imageRef": 5}}, 400),
    Case("POST", ACTION, {"rebuild": {"imageRef": "{image}", "name": 5}}, 400),
    Case("POST", ACTION, {"os-getConsoleOutput": {"length": HUGE}}, 400),
    Case("POST", API + "/os-keypairs", {"keypair": {"name": 5}}, 400),
    Case("POST", API + "/os-keypairs", {"keypair": {"name": "k", "public_key": 5}}, 400),
    Case("POST", API + "/os-server-groups", {"server_group": {"name": 5, "policies": ["affinity"]}}, 400),
    Case(
        "POST",
        API + "/os-server-groups",
        {"server_group": {"name": "g", "policy": 5}},
        400,
        microversion="2.64",
    ),
    Case("POST", API + "/os-aggregates", {"aggregate": {"name": 5}}, 400),
    Case("POST", API + "/os-aggregates", {"aggregate": {"name": "a", "availability_zone": 5}}, 400),
    Case("POST", API + "/flavors", {"flavor": {"name": 5, "vcpus": 1, "ram": 1, "disk": 1}}, 400),
    Case(
        "POST", API + "/flavors", {"flavor": {"name": "f", "vcpus": 1, "ram": 1, "disk": 1, "id": ["x"]}}, 400
    ),
    Case(
        "POST",
        API + "/os-kumo-stock-requests",
        {"stock_request": {"flavor": 5, "count": 1, "reason": "r"}},
        400,
    ),
    Case(
        "POST",
        API + "/os-kumo-stock-requests",
        {"stock_request": {"flavor": "f", "count": HUGE, "reason": "r"}},
        400,
    ),
    Case(
        "POST",
        API + "/os-kumo-stock-requests",
        {"stock_request": {"flavor": "f", "count": 1, "reason": 5}},
        400,
    ),
    Case("POST", API + "/servers", {**_boot(), "os:scheduler_hints": {"same_host": 5}}, 400),
    Case("POST", API + "/servers", {**_boot(), "os:scheduler_hints": {"different_host": [["x"]]}}, 400),
    Case("POST", API + "/servers", {**_boot(), "os:scheduler_hints": {"group": {"a": 1}}}, 400),
    Case("POST", API + "/servers", {**_boot(), "os:scheduler_hints": ["group"]}, 400),
    Case("PUT", API + f"/servers/{NOWHERE}", {"server": {"description": 5}}, 400, microversion="2.19"),
    # 5. control characters in names and keys
    Case("POST", API + "/servers", _boot(metadata={"k\x01": "v"}), 400),
    Case("POST", API + "/servers", _boot(metadata={"a/b": "v"}), 400),
    Case("POST", API + f"/servers/{NOWHERE}/metadata", {"metadata": {"k\n": "v"}}, 400),
    Case("PUT", API + "/os-kumo-host-labels/nowhere", {"labels": {"rack": "r\x01"}}, 400),
    Case("POST", API + "/servers", _boot(name="vm\x07"), 400),
    Case("POST", API + "/servers", _boot(name="vm\nx"), 400),
    Case("PUT", API + f"/servers/{NOWHERE}", {"server": {"name": "a\x1bb"}}, 400),
    Case("POST", API + "/flavors", {"flavor": {"name": "f\x01", "vcpus": 1, "ram": 1, "disk": 1}}, 400),
    Case("POST", API + "/os-keypairs", {"keypair": {"name": "k\x01"}}, 400),
    Case(
        "POST", API + "/os-server-groups", {"server_group": {"name": "g\x01", "policies": ["affinity"]}}, 400
    ),
    Case("POST", API + "/os-aggregates", {"aggregate": {"name": "a\x01"}}, 400),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_field(field_cloud: FieldCloud, case: Case) -> None:
    run_case(field_cloud, case)


def test_min_count_1e20_is_refused_fast_with_unlimited_quota(field_cloud: FieldCloud) -> None:
    with field_cloud.cloud.client(token=field_cloud.ids["token"]) as c:
        project = field_cloud.ids["project"]
        unlimited = {"quota_set": {"instances": -1, "cores": -1, "ram": -1}}
        assert c.put(f"{API}/os-quota-sets/{project}", json=unlimited).status_code == 200
        try:
            started = time.monotonic()
            body = setup_boot(_boot(min_count=1e20), field_cloud.ids)
            resp = c.post(f"{API}/servers", json=body)
            assert time.monotonic() - started < 2
            assert resp.status_code == 400, resp.text
            assert "min_count" in resp.json()["badRequest"]["message"]
        finally:
            c.delete(f"{API}/os-quota-sets/{project}")


def test_count_as_digit_string_is_accepted(field_cloud: FieldCloud) -> None:
    with field_cloud.cloud.client(token=field_cloud.ids["token"]) as c:
        body = setup_boot(_boot(min_count="2", max_count="2", name="pair"), field_cloud.ids)
        resp = c.post(f"{API}/servers", json=body)
        assert resp.status_code == 202, resp.text
        listed = c.get(f"{API}/servers", params={"name": "pair"}).json()["servers"]
        assert len(listed) == 2
        for server in listed:
            c.delete(f"{API}/servers/{server['id']}")


def test_a_requested_force_host_hint_is_not_kept(field_cloud: FieldCloud) -> None:
    """`force_host` is kumo's own hint (an admin's `zone:host`); a request cannot set it."""
    body = setup_boot(_boot(name="hinted"), field_cloud.ids)
    body["os:scheduler_hints"] = {"force_host": "chosen-host", "same_host": []}
    with field_cloud.cloud.client(token=field_cloud.ids["token"]) as c:
        resp = c.post(f"{API}/servers", json=body)
        assert resp.status_code == 202, resp.text
        server_id = resp.json()["server"]["id"]
        try:
            db = Database(field_cloud.cloud.settings.resolved_database_url)
            try:
                with db.read() as session:
                    hints = session.scalar(select(Instance.scheduler_hints).where(Instance.uuid == server_id))
            finally:
                db.dispose()
            assert hints == {"same_host": []}
        finally:
            c.delete(f"{API}/servers/{server_id}")
