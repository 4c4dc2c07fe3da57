"""openstacksdk's baremetal proxy, unmodified, against kumo: version discovery, enrolment,
provisioning through a conductor stand-in, power and maintenance, errors as SDK exceptions."""

from __future__ import annotations

import pytest
from openstack import exceptions

from tests.conftest import Cloud
from tests.functional.baremetal.standin import StandInConductor
from tests.functional.sdk.test_sdk import connect

pytestmark = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedFieldWarning")


def test_sdk_node_lifecycle(cloud: Cloud) -> None:
    conductor = StandInConductor(cloud.url, cloud.settings.secret("agent_token")).start()
    try:
        conn = connect(cloud)
        node = conn.baremetal.create_node(
            name="sdk-1",
            driver="redfish",
            driver_info={
                "redfish_address": "http://127.0.0.1:8000",
                "redfish_system_id": "/redfish/v1/Systems/1",
            },
            resource_class="bm.small",
            properties={"cpus": 2, "memory_mb": 4096, "local_gb": 20, "rack": "r1"},
        )
        assert node.provision_state == "enroll" and node.resource_class == "bm.small"
        assert [n.name for n in conn.baremetal.nodes()] == ["sdk-1"]
        conn.baremetal.set_node_provision_state(node, "manage", wait=True, timeout=30)
        conn.baremetal.set_node_provision_state(node, "provide", wait=True, timeout=30)
        assert conn.baremetal.get_node("sdk-1").provision_state == "available"
        conn.baremetal.set_node_power_state(node, "power on", wait=True, timeout=30)
        assert conn.baremetal.get_node(node.id).power_state == "power on"
        conn.baremetal.set_node_maintenance(node, reason="fan")
        shown = conn.baremetal.get_node(node.id)
        assert shown.is_maintenance and shown.maintenance_reason == "fan"
        conn.baremetal.unset_node_maintenance(node)
        updated = conn.baremetal.update_node(node, extra={"team": "db"})
        assert updated.extra == {"team": "db"}
        with pytest.raises(exceptions.BadRequestException, match="can not be performed"):
            conn.baremetal.set_node_provision_state(node, "provide")
        with pytest.raises(exceptions.NotFoundException):
            conn.baremetal.get_node("missing")
        conn.baremetal.delete_node(node)
        assert list(conn.baremetal.nodes()) == []
    finally:
        conductor.stop()


def test_sdk_ports(cloud: Cloud) -> None:
    conn = connect(cloud)
    node = conn.baremetal.create_node(name="sdk-ports", driver="fake-hardware")
    port = conn.baremetal.create_port(node_id=node.id, address="52:54:00:5d:00:01", extra={"slot": "1"})
    assert (port.address, port.node_id, port.is_pxe_enabled) == ("52:54:00:5d:00:01", node.id, True)
    other = conn.baremetal.create_port(node_id=node.id, address="52:54:00:5d:00:02", is_pxe_enabled=False)
    assert [p.id for p in conn.baremetal.ports(node_id=node.id)] == [port.id, other.id]
    detailed = list(conn.baremetal.ports(details=True, address="52:54:00:5d:00:02"))
    assert [(p.id, p.is_pxe_enabled) for p in detailed] == [(other.id, False)]
    updated = conn.baremetal.update_port(other, is_pxe_enabled=True, physical_network="physnet1")
    assert (updated.is_pxe_enabled, updated.physical_network) == (True, "physnet1")
    assert conn.baremetal.get_port(other.id).physical_network == "physnet1"
    with pytest.raises(exceptions.ConflictException, match="already exists"):
        conn.baremetal.create_port(node_id=node.id, address="52:54:00:5D:00:01")
    conn.baremetal.delete_port(other)
    assert [p.id for p in conn.baremetal.ports()] == [port.id]
    with pytest.raises(exceptions.NotFoundException):
        conn.baremetal.get_port(other.id)
    conn.baremetal.delete_node(node)
    assert list(conn.baremetal.ports()) == []
