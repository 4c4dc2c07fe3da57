"""Ironic: oversized integers and wrong types are 400s in Ironic's error body (issue 15), on
SQLite and PostgreSQL (where a LIMIT beyond BIGINT overflowed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.functional.field_validation import BACKENDS, Case, FieldCloud, run_case, serve_field_cloud

N = "/baremetal/v1/nodes"
BIG = "99999999999999999999"
HUGE = 10**20
V = {"X-OpenStack-Ironic-API-Version": "1.65"}


@pytest.fixture(scope="module", params=BACKENDS)
def field_cloud(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FieldCloud]:
    yield from serve_field_cloud(request, tmp_path_factory)


def _node(**fields: object) -> dict[str, object]:
    return {"driver": "fake-hardware", **fields}


CASES = [
    Case("GET", f"{N}?limit={BIG}", None, 200, headers=V),
    Case("GET", f"{N}/detail?limit={BIG}", None, 200, headers=V),
    Case("GET", f"{N}?limit=x", None, 400, headers=V),
    Case("POST", N, _node(name=5), 400, headers=V),
    Case("POST", N, _node(driver=5), 400, headers=V),
    Case("POST", N, _node(properties={"cpus": HUGE}), 400, headers=V),
    Case("POST", N, _node(properties={"memory_mb": 2**31}), 400, headers=V),
    Case("POST", N, _node(properties={"local_gb": "many"}), 400, headers=V),
    Case("POST", N, _node(properties=[1]), 400, headers=V),
    Case("POST", N, _node(description=5), 400, headers=V),
    Case("POST", N, _node(resource_class=["x"]), 400, headers=V),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_field(field_cloud: FieldCloud, case: Case) -> None:
    run_case(field_cloud, case)
