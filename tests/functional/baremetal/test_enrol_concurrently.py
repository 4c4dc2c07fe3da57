"""Nodes of a resource class nobody has used yet, enrolled at once on PostgreSQL: every create
succeeds (the class row is created once, ON CONFLICT DO NOTHING, instead of read-then-add)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import Cloud
from tests.functional.baremetal.helpers import IRONIC

NODES = 24


def test_concurrent_enrolment_of_a_new_resource_class(pg_cloud: Cloud) -> None:
    token = pg_cloud.client().headers["X-Auth-Token"]

    def create(number: int) -> int:
        body = {"name": f"race-{number}", "driver": "fake-hardware", "resource_class": "baremetal-race"}
        with httpx.Client(base_url=pg_cloud.url, headers={"X-Auth-Token": token, **IRONIC}) as c:
            return c.post("/baremetal/v1/nodes", json=body).status_code

    with ThreadPoolExecutor(max_workers=NODES) as pool:
        codes = list(pool.map(create, range(NODES)))
    assert codes == [201] * NODES
    with pg_cloud.client() as c:
        c.headers.update(IRONIC)
        nodes = c.get("/baremetal/v1/nodes", params={"resource_class": "baremetal-race"}).json()["nodes"]
        classes = c.get("/placement/resource_classes", headers={"OpenStack-API-Version": "placement 1.7"})
    assert len(nodes) == NODES
    assert [rc["name"] for rc in classes.json()["resource_classes"]].count("CUSTOM_BAREMETAL_RACE") == 1
