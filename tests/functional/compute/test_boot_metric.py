"""kumo_server_boot_seconds (at /metrics): a server's first spawn done counts one boot, from its
create request to ACTIVE, by kind (a hypervisor's, a baremetal node's); its unshelve (a spawn
again, launched before) counts none; a batch of results applied again (each alone) counts its
boot once."""

from __future__ import annotations

import time

import httpx
import pytest

from kumo.agent import service
from kumo.work.models import Task
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.baremetal.helpers import (
    bm_flavor,
    create_server,
    enroll,
    image,
    ironic,
    make_available,
    wait_server,
)
from tests.functional.baremetal.standin import StandInConductor
from tests.functional.compute.test_unshelve import _boot, _offload, _settled, _unshelve


def _series(cloud: Cloud, name: str, kind: str = "hypervisor") -> float:
    for line in httpx.get(f"{cloud.url}/metrics").text.splitlines():
        if line.startswith(f'{name}{{kind="{kind}"}} '):
            return float(line.split()[1])
    return 0.0  # no boot of that kind yet in this process


def boots(cloud: Cloud, kind: str = "hypervisor") -> float:
    return _series(cloud, "kumo_server_boot_seconds_count", kind)


def boot_seconds(cloud: Cloud, kind: str = "hypervisor") -> float:
    return _series(cloud, "kumo_server_boot_seconds_sum", kind)


def test_a_first_boot_counts_and_an_unshelve_does_not(cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("us-h1", vcpus=2, memory_mb=2048)
    cloud.settings.shelved_offload_time = 0
    with cloud.client() as c:
        wait_for(lambda: c.get("/compute/v2.1/os-hypervisors").json()["hypervisors"])
        before = boots(cloud)  # the registry is the process's: other tests' boots count too
        seconds_before = boot_seconds(cloud)
        started = time.monotonic()
        sid = _boot(c)
        wall = time.monotonic() - started
        assert boots(cloud) == before + 1
        observed = boot_seconds(cloud) - seconds_before
        assert 0 < observed <= wall, (observed, wall)  # created_at and launched_at fall within it
        _offload(c, sid)
        assert _unshelve(c, sid, "2.77", None).status_code == 202
        _settled(c, sid, "ACTIVE")
    assert boots(cloud) == before + 1


def test_a_batch_applied_again_each_alone_counts_its_boot_once(
    cloud: Cloud, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = service.complete
    raised: list[str] = []

    def complete(session, task_id, result):  # type: ignore[no-untyped-def]
        boot = real(session, task_id, result)
        task = session.get(Task, task_id)
        if task is not None and str(task.kind) == "spawn" and not raised:
            raised.append(task_id)  # as another result of the same batch failing to apply
            raise RuntimeError("another result of the batch cannot be applied")
        return boot

    monkeypatch.setattr(service, "complete", complete)
    fleet.add("us-h1", vcpus=2, memory_mb=2048)
    with cloud.client() as c:
        wait_for(lambda: c.get("/compute/v2.1/os-hypervisors").json()["hypervisors"])
        before = boots(cloud)
        _boot(c)
        assert raised  # the whole batch failed once, and was applied again each alone
        assert boots(cloud) == before + 1, (before, boots(cloud))


def test_a_baremetal_boot_counts_under_its_kind(cloud: Cloud) -> None:
    conductor = StandInConductor(cloud.url, cloud.settings.secret("agent_token")).start()
    try:
        with ironic(cloud) as c:
            uuid = enroll(c, "boot-n1")["uuid"]
            make_available(c, uuid)
            before, vms = boots(cloud, "baremetal"), boots(cloud)
            wait_server(c, create_server(c, bm_flavor(c), image(c)), "ACTIVE")
    finally:
        conductor.stop()
    assert boots(cloud, "baremetal") == before + 1
    assert boots(cloud) == vms  # not a hypervisor's boot
