"""Placement: oversized amounts, limits and generations are 400s in Placement's error body
(issue 15), on SQLite and PostgreSQL (where they overflowed the INTEGER columns)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.functional.field_validation import BACKENDS, Case, FieldCloud, run_case, serve_field_cloud

P = "/placement"
RP = "11111111-1111-1111-1111-111111111111"
CONSUMER = "22222222-2222-2222-2222-222222222222"
BIG = "99999999999999999999"
HUGE = 10**20
V = {"OpenStack-API-Version": "placement 1.35"}


@pytest.fixture(scope="module", params=BACKENDS)
def field_cloud(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FieldCloud]:
    fc_iter = serve_field_cloud(request, tmp_path_factory)
    fc = next(fc_iter)
    with fc.cloud.client(token=fc.ids["token"]) as c:
        made = c.post(f"{P}/resource_providers", json={"name": "rp", "uuid": RP}, headers=V)
        assert made.status_code == 200, made.text
        inventory = {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}}
        assert c.put(f"{P}/resource_providers/{RP}/inventories", json=inventory, headers=V).status_code == 200
    yield fc
    next(fc_iter, None)


def _alloc(amount: int, generation: int | None = None) -> dict[str, object]:
    return {
        "allocations": {RP: {"resources": {"VCPU": amount}}},
        "project_id": "p",
        "user_id": "u",
        "consumer_generation": generation,
    }


def _inventory(**fields: int) -> dict[str, object]:
    return {"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 8, **fields}}}


CASES = [
    Case("GET", f"{P}/allocation_candidates?resources=VCPU:{BIG}", None, 400, headers=V),
    Case("GET", f"{P}/allocation_candidates?resources=VCPU:2147483648", None, 400, headers=V),
    Case("GET", f"{P}/allocation_candidates?resources=VCPU:\u00b2", None, 400, headers=V),
    Case("GET", f"{P}/allocation_candidates?resources1=VCPU:{BIG}&group_policy=none", None, 400, headers=V),
    Case("GET", f"{P}/allocation_candidates?resources=VCPU:1&limit={BIG}", None, 200, headers=V),
    Case("GET", f"{P}/allocation_candidates?resources=VCPU:1&limit=\u0661", None, 400, headers=V),
    Case("GET", f"{P}/resource_providers?resources=VCPU:{BIG}", None, 400, headers=V),
    Case("GET", f"{P}/resource_providers?resources=VCPU:1", None, 200, headers=V),
    Case("PUT", f"{P}/allocations/{CONSUMER}", _alloc(HUGE), 400, headers=V),
    Case("PUT", f"{P}/allocations/{CONSUMER}", _alloc(2**31), 400, headers=V),
    Case("PUT", f"{P}/allocations/{CONSUMER}", _alloc(1, HUGE), 400, headers=V),
    Case("PUT", f"{P}/resource_providers/{RP}/inventories", _inventory(reserved=HUGE), 400, headers=V),
    Case("PUT", f"{P}/resource_providers/{RP}/inventories", _inventory(max_unit=2**31), 400, headers=V),
    Case(
        "PUT",
        f"{P}/resource_providers/{RP}/inventories",
        {"resource_provider_generation": HUGE, "inventories": {}},
        400,
        headers=V,
    ),
    Case(
        "PUT",
        f"{P}/resource_providers/{RP}/traits",
        {"resource_provider_generation": HUGE, "traits": []},
        400,
        headers=V,
    ),
    Case("PUT", f"{P}/resource_providers/{RP}", {"name": 5}, 400, headers=V),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_field(field_cloud: FieldCloud, case: Case) -> None:
    run_case(field_cloud, case)
