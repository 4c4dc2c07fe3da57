"""Placement API tests: httpx against a real kumo API (the `cloud` fixture)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Cloud

VERSION = "1.35"


@pytest.fixture
def placement(cloud: Cloud) -> Iterator[httpx.Client]:
    """An admin client on /placement at the highest microversion kumo serves."""
    client = httpx.Client(
        base_url=f"{cloud.url}/placement",
        headers={"X-Auth-Token": cloud.token(), "OpenStack-API-Version": f"placement {VERSION}"},
        timeout=30,
    )
    yield client
    client.close()
