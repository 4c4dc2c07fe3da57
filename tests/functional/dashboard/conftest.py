"""The dashboard's functional tests' cloud: two fake hypervisors in racks r1 and r2."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Cloud, Fleet, wait_for


@pytest.fixture
def site(cloud: Cloud, fleet: Fleet) -> Iterator[Cloud]:
    fleet.add("h1", rack="r1")
    fleet.add("h2", rack="r2")
    with cloud.client() as admin:
        wait_for(lambda: len(admin.get("/compute/v2.1/os-hypervisors").json()["hypervisors"]) == 2)
    yield cloud
