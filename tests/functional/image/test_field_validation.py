"""Glance: oversized integers and wrong types are 400s in Glance's error body (issue 15), on
SQLite and PostgreSQL (where a size filter beyond BIGINT overflowed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.functional.field_validation import BACKENDS, Case, FieldCloud, run_case, serve_field_cloud

IMAGES = "/image/v2/images"
BIG = "99999999999999999999"
HUGE = 10**20


@pytest.fixture(scope="module", params=BACKENDS)
def field_cloud(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FieldCloud]:
    yield from serve_field_cloud(request, tmp_path_factory)


CASES = [
    Case("GET", f"{IMAGES}?limit={BIG}", None, 200),
    Case("GET", f"{IMAGES}?size_min={BIG}", None, 400),
    Case("GET", f"{IMAGES}?size_max={BIG}", None, 400),
    Case("GET", f"{IMAGES}?size_min=1", None, 200),
    Case("POST", IMAGES, {"name": 5}, 400),
    Case("POST", IMAGES, {"name": "i", "min_ram": HUGE}, 400),
    Case("POST", IMAGES, {"name": "i", "min_disk": 2**31}, 400),
    Case("POST", IMAGES, {"name": "i", "tags": [5]}, 400),
    Case("POST", IMAGES, {"name": "i", "os_distro": 5}, 400),
    Case("POST", IMAGES, {"name": "i", "visibility": 5}, 400),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_field(field_cloud: FieldCloud, case: Case) -> None:
    run_case(field_cloud, case)
