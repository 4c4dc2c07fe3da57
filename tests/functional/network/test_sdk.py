"""openstacksdk, unmodified, against kumo's Neutron subset: the network proxy and the cloud
layer (create_network, create_subnet, create_port, security groups, find by name)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openstack import exceptions
from openstack.connection import Connection

from tests.conftest import DEMO_PASSWORD, Cloud
from tests.functional.sdk.test_sdk import connect

pytestmark = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedFieldWarning")


@pytest.fixture
def demo(cloud: Cloud) -> Iterator[Connection]:
    c = connect(cloud, "demo", DEMO_PASSWORD, "demo")
    yield c
    c.close()


def test_cloud_layer_builds_a_network(demo: Connection) -> None:
    net = demo.create_network("sdk-net")
    subnet = demo.create_subnet(
        "sdk-net",
        cidr="10.30.0.0/24",
        subnet_name="sdk-sub",
        dns_nameservers=["10.30.0.53"],
        enable_dhcp=True,
    )
    assert subnet.gateway_ip == "10.30.0.1" and subnet.dns_nameservers == ["10.30.0.53"]
    assert [n.name for n in demo.list_networks()] == ["sdk-net"]
    found = demo.get_network("sdk-net")
    assert found is not None and found.id == net.id
    port = demo.create_port(net.id, name="sdk-port", fixed_ips=[{"ip_address": "10.30.0.40"}])
    assert port.fixed_ips == [{"subnet_id": subnet.id, "ip_address": "10.30.0.40"}]
    assert {p.name for p in demo.list_ports(filters={"network_id": net.id})} == {"", "sdk-port"}
    group = demo.create_security_group("web", "web servers")
    demo.create_security_group_rule(group.id, port_range_min=22, port_range_max=22, protocol="tcp")
    web = demo.get_security_group("web")
    assert web is not None
    rules = web.security_group_rules
    assert sorted((r["direction"], r["protocol"]) for r in rules) == [
        ("egress", None),
        ("egress", None),
        ("ingress", "tcp"),
    ]
    assert {g.name for g in demo.list_security_groups()} == {"default", "web"}
    demo.delete_port(port.id)
    assert demo.delete_subnet("sdk-sub") and demo.delete_network("sdk-net")
    assert demo.list_networks() == []


def test_network_proxy(demo: Connection) -> None:
    net = demo.network.create_network(name="px", mtu=1450)
    subnet = demo.network.create_subnet(
        network_id=net.id,
        ip_version=4,
        cidr="10.31.0.0/28",
        allocation_pools=[{"start": "10.31.0.5", "end": "10.31.0.6"}],
    )
    found = demo.network.find_network("px")
    assert found is not None and found.mtu == 1450
    first = demo.network.create_port(network_id=net.id)  # the DHCP port took .5
    assert first.fixed_ips[0]["ip_address"] == "10.31.0.6"
    with pytest.raises(exceptions.ConflictException, match="No more IP addresses"):
        demo.network.create_port(network_id=net.id)
    assert demo.network.get_subnet(subnet.id).cidr == "10.31.0.0/28"
    with pytest.raises(exceptions.NotFoundException):
        demo.network.get_network("no-such-network")
    quota = demo.network.get_quota(str(demo.current_project_id), details=True)
    assert quota.networks == {"limit": 100, "used": 1, "reserved": 0}
    demo.network.delete_port(first)
    demo.network.delete_network(net)
