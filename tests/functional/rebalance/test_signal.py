"""The CPU signal end to end with the fake driver: an agent samples its guests' counters,
smooths them and reports to PUT /internal/v1/hosts/{host}/cpu-signal; the API keeps the latest
rates per server and per host, advances each server's trigger, and /metrics shows the host's
steal. The report route refuses (4xx, never a 500) more than 4096 guests, keys longer than a
UUID, non-finite numbers and a host path that is no host name."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from kumo.agent.drivers.fake import FakeDriver
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.rebalance.models import HostCpuSignal, VmCpuSignal
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.helpers import database
from tests.functional.compute.test_servers import _create, _wait_status
from tests.functional.helpers import make_flavor, upload_image


def test_agent_reports_steal_and_the_trigger_arms(cloud: Cloud, fleet: Fleet) -> None:
    # 2 cores shared by three 1-core guests: D = 3 > 0.95 x 2, each loses 1 - 1.9/3 = 37 %.
    driver = FakeDriver("sig-a", vcpus=8, cpu_cores=2.0)
    fleet.add("sig-a", driver=driver, cpu_sample_interval=0.05, cpu_report_interval=0.1)
    with cloud.client() as c:
        flavor, image = make_flavor(c, "sig1"), upload_image(c)
        sids = [_create(c, flavor, image, metadata={"fake_cpu_demand": "1.0"}) for _ in range(3)]
        for sid in sids:
            _wait_status(c, sid, "ACTIVE")
    db = database(cloud)
    try:

        def armed() -> list[VmCpuSignal]:
            with db.read() as s:
                rows = list(s.scalars(select(VmCpuSignal).where(VmCpuSignal.host == "sig-a")))
            return rows if len(rows) == 3 and all(r.hot_rounds >= 3 for r in rows) else []

        rows = wait_for(armed, timeout=20)
        assert {r.instance_uuid for r in rows} == set(sids)
        for r in rows:
            assert r.vcpus == 1
            assert r.run_cores + r.delay_cores > 0.5  # smoothing converges towards 1.0 wanted
            assert 100 * r.delay_cores / r.vcpus > 5.0  # steal well above the trigger
        with db.read() as s:
            host = s.get(HostCpuSignal, "sig-a")
            assert host is not None and host.cores == 2.0 and host.steal_cores > 0.3
    finally:
        db.dispose()
    page = httpx.get(f"{cloud.url}/metrics").text
    assert 'kumo_host_steal_cores{host="sig-a"}' in page


def test_report_route_guards(cloud: Cloud) -> None:
    url = f"{cloud.url}/internal/v1/hosts/nowhere/cpu-signal"
    body = {
        "cores": 2,
        "load1": 0,
        "guests": {"not-a-server": {"vcpus": 1, "run_cores": 1, "delay_cores": 1}},
    }
    assert httpx.put(url, json=body).status_code == 401  # no agent token
    token = {AGENT_TOKEN_HEADER: cloud.settings.secret("agent_token")}
    bad = {**body, "guests": {"x": {"vcpus": 0, "run_cores": -1, "delay_cores": 1}}}
    assert httpx.put(url, json=bad, headers=token).status_code in (400, 422)
    one = {"vcpus": 1, "run_cores": 0, "delay_cores": 0}
    too_many = {**body, "guests": {f"{i:036d}": one for i in range(4097)}}
    assert httpx.put(url, json=too_many, headers=token).status_code in (400, 422)
    long_key = {**body, "guests": {"u" * 37: one}}
    assert httpx.put(url, json=long_key, headers=token).status_code in (400, 422)
    nan = httpx.put(url, content=b'{"cores": NaN, "load1": 0, "guests": {}}', headers=token)
    assert nan.status_code in (400, 422)
    for host in ("h" * 256, "bad%20host"):
        wrong = f"{cloud.url}/internal/v1/hosts/{host}/cpu-signal"
        assert httpx.put(wrong, json=body, headers=token).status_code == 400
    assert httpx.put(url, json=body, headers=token).status_code == 204
    db = database(cloud)
    try:
        with db.read() as s:  # a guest kumo does not place on that host is not kept
            assert s.get(VmCpuSignal, "not-a-server") is None
            assert s.get(HostCpuSignal, "nowhere") is not None
    finally:
        db.dispose()
