"""os-availability-zone: zones from aggregates plus the default one, and the admin detail."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kumo.compute import aggregates
from kumo.compute.models import ComputeHost
from tests.conftest import Cloud
from tests.functional.compute.helpers import API, BACKENDS, database, demo_token, either_cloud, register_hosts


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


def _zone_setup(cloud: Cloud) -> None:
    register_hosts(cloud, "h1", "h2", "h3")
    with cloud.client(microversion="2.64") as c:
        agg = c.post(f"{API}/os-aggregates", json={"aggregate": {"name": "a", "availability_zone": "az1"}})
        agg_id = agg.json()["aggregate"]["id"]
        c.post(f"{API}/os-aggregates/{agg_id}/action", json={"add_host": {"host": "h1"}})
        # An aggregate with a zone but no hosts defines no zone.
        c.post(f"{API}/os-aggregates", json={"aggregate": {"name": "empty", "availability_zone": "ghost"}})
        # A zone whose every host is disabled is listed as unavailable.
        dis = c.post(f"{API}/os-aggregates", json={"aggregate": {"name": "d", "availability_zone": "azoff"}})
        c.post(
            f"{API}/os-aggregates/{dis.json()['aggregate']['id']}/action", json={"add_host": {"host": "h3"}}
        )
        h3 = [s for s in c.get(f"{API}/os-services").json()["services"] if s["host"] == "h3"][0]
        assert c.put(f"{API}/os-services/{h3['id']}", json={"status": "disabled"}).status_code == 200


def test_zone_list_for_everyone(cloud: Cloud) -> None:
    _zone_setup(cloud)
    with cloud.client(demo_token(cloud)) as c:
        zones = c.get(f"{API}/os-availability-zone").json()["availabilityZoneInfo"]
        assert c.get(f"{API}/os-availability-zone/detail").status_code == 403
    assert zones == [
        {"zoneName": "az1", "zoneState": {"available": True}, "hosts": None},
        {"zoneName": "azoff", "zoneState": {"available": False}, "hosts": None},
        {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None},
    ]


def test_detail_has_hosts_services_and_the_internal_zone(any_cloud: Cloud) -> None:
    _zone_setup(any_cloud)
    with any_cloud.client() as c:
        info = {
            z["zoneName"]: z
            for z in c.get(f"{API}/os-availability-zone/detail").json()["availabilityZoneInfo"]
        }
    assert set(info) == {"internal", "az1", "azoff", "nova"}
    assert list(info["az1"]["hosts"]) == ["h1"]
    service = info["az1"]["hosts"]["h1"]["nova-compute"]
    assert service["available"] is True and service["active"] is True and service["updated_at"]
    assert list(info["nova"]["hosts"]) == ["h2"]
    assert info["azoff"] == {"zoneName": "azoff", "zoneState": {"available": False}, "hosts": None}
    internal_services = set().union(*(set(v) for v in info["internal"]["hosts"].values()))
    assert internal_services == {"nova-scheduler", "nova-conductor"}


def test_domain_helpers_for_server_create(cloud: Cloud) -> None:
    _zone_setup(cloud)
    db = database(cloud)
    try:
        with db.transaction() as s:
            assert aggregates.availability_zone_of(s, "h1") == "az1"
            assert aggregates.availability_zone_of(s, "h2") == "nova"
            assert aggregates.zone_exists(s, "az1") and aggregates.zone_exists(s, "nova")
            assert not aggregates.zone_exists(s, "ghost")
            assert not aggregates.zone_exists(s, "azoff")  # no enabled host there
            assert s.scalar(select(ComputeHost.disabled).where(ComputeHost.name == "h3")) is True
    finally:
        db.dispose()
