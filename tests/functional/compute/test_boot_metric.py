"""kumo_server_boot_seconds (at /metrics): a server's first spawn done counts one boot, from its
create request to ACTIVE; its unshelve (a spawn again, launched before) counts none."""

from __future__ import annotations

import httpx

from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.test_unshelve import _boot, _offload, _settled, _unshelve


def boots(cloud: Cloud) -> float:
    for line in httpx.get(f"{cloud.url}/metrics").text.splitlines():
        if line.startswith("kumo_server_boot_seconds_count "):
            return float(line.split()[1])
    raise AssertionError("no kumo_server_boot_seconds at /metrics")


def test_a_first_boot_counts_and_an_unshelve_does_not(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("us-h1", vcpus=2, memory_mb=2048)
    cloud.settings.shelved_offload_time = 0
    with cloud.client() as c:
        wait_for(lambda: c.get("/compute/v2.1/os-hypervisors").json()["hypervisors"])
        before = boots(cloud)  # the registry is the process's: other tests' boots count too
        sid = _boot(c)
        assert boots(cloud) == before + 1
        _offload(c, sid)
        assert _unshelve(c, sid, "2.77", None).status_code == 202
        _settled(c, sid, "ACTIVE")
    assert boots(cloud) == before + 1
