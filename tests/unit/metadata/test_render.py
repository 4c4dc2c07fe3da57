"""The metadata trees rendered from a bundle: one path, one expected answer (Nova's formats),
and the network_data.json cloud-init turns into its network config."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kumo.metadata import render
from tests.unit.metadata.builders import KEY, NET, PORT, USER_DATA, bundle, port
from tests.unit.metadata.cloudinit import cloudinit

VERSIONS = (
    "2012-08-10\n2013-04-04\n2013-10-17\n2015-10-15\n2016-06-30\n2016-10-06\n2017-02-22\n"
    "2018-08-27\n2020-10-14\nlatest"
)
EC2_VERSIONS = (
    "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n2008-02-01\n2008-09-01\n"
    "2009-04-04\nlatest"
)
META_DATA_DIR = (
    "ami-id\nami-launch-index\nami-manifest-path\nblock-device-mapping/\nhostname\ninstance-action\n"
    "instance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\nplacement/\npublic-hostname\npublic-ipv4\n"
    "public-keys/\nreservation-id\nsecurity-groups"
)
TEXT_CASES: list[tuple[str, int, bytes]] = [
    ("/openstack", 200, VERSIONS.encode()),
    ("/openstack/", 200, VERSIONS.encode()),
    (
        "/openstack/latest",
        200,
        b"meta_data.json\nuser_data\nvendor_data.json\nnetwork_data.json\nvendor_data2.json",
    ),
    ("/openstack/2012-08-10/", 200, b"meta_data.json\nuser_data"),
    ("/openstack/2015-10-15/", 200, b"meta_data.json\nuser_data\nvendor_data.json\nnetwork_data.json"),
    ("/openstack/latest/user_data", 200, USER_DATA),
    ("/openstack/latest/vendor_data.json", 200, b"{}"),
    ("/openstack/latest/vendor_data2.json", 200, b"{}"),
    ("/openstack/2012-08-10/vendor_data.json", 404, render.NOT_FOUND.body),
    ("/openstack/2011-01-01/meta_data.json", 404, render.NOT_FOUND.body),
    ("/openstack/latest/password", 404, render.NOT_FOUND.body),
    ("/openstack/latest/meta_data.json/x", 404, render.NOT_FOUND.body),
    ("/", 200, EC2_VERSIONS.encode()),
    ("/latest", 200, b"meta-data/\nuser-data"),
    ("/2009-04-04/meta-data/", 200, META_DATA_DIR.encode()),
    ("/latest/meta-data", 200, META_DATA_DIR.encode()),
    ("/2009-04-04/meta-data/instance-id", 200, b"i-0000002a"),
    ("/2009-04-04/meta-data/ami-id", 200, b"ami-1234abcd"),
    ("/2009-04-04/meta-data/ami-launch-index", 200, b"2"),
    ("/2009-04-04/meta-data/hostname", 200, b"web-1.novalocal"),
    ("/2009-04-04/meta-data/local-hostname", 200, b"web-1.novalocal"),
    ("/2009-04-04/meta-data/local-ipv4", 200, b"10.0.0.5"),
    ("/2009-04-04/meta-data/instance-type", 200, b"m1.small"),
    ("/2009-04-04/meta-data/placement/", 200, b"availability-zone"),
    ("/2009-04-04/meta-data/placement/availability-zone", 200, b"az1"),
    ("/2009-04-04/meta-data/public-keys/", 200, b"0=demo"),
    ("/2009-04-04/meta-data/public-keys/0/", 200, b"openssh-key"),
    ("/2009-04-04/meta-data/public-keys/0/openssh-key", 200, KEY.encode()),
    ("/2009-04-04/meta-data/public-keys/0/_name", 404, render.NOT_FOUND.body),
    ("/2009-04-04/meta-data/block-device-mapping/", 200, b"ami\nroot"),
    ("/2009-04-04/user-data", 200, USER_DATA),
    ("/latest/user-data?x=1", 200, USER_DATA),
    ("/2010-01-01/meta-data/", 404, render.NOT_FOUND.body),
    ("/latest/meta-data/no-such-key", 404, render.NOT_FOUND.body),
    ("/latest/meta-data/../user-data", 404, render.NOT_FOUND.body),
]


@pytest.mark.parametrize(("path", "status", "body"), TEXT_CASES)
def test_path_answers(path: str, status: int, body: bytes) -> None:
    answer = render.render(bundle(), path)
    assert (answer.status, answer.body) == (status, body)


def test_meta_data_json_latest_has_every_field_nova_writes() -> None:
    answer = render.render(bundle(), "/openstack/latest/meta_data.json", random_seed=b"\x01" * 512)
    assert answer.content_type == render.JSON
    data = json.loads(answer.body)
    assert len(data.pop("random_seed")) == 684  # 512 bytes in base64
    assert data == {
        "uuid": "5f7a1c3e-0b1d-4e8f-9a6b-2c4d6e8f0a1b",
        "name": "web-1",
        "hostname": "web-1.novalocal",
        "launch_index": 2,
        "availability_zone": "az1",
        "project_id": "p-1",
        "meta": {"role": "web"},
        "public_keys": {"demo": KEY},
        "keys": [{"name": "demo", "type": "ssh", "data": KEY}],
        "devices": [],
        "dedicated_cpus": [],
    }


@pytest.mark.parametrize(
    ("version", "absent", "present"),
    [
        ("2012-08-10", {"random_seed", "keys", "project_id", "devices", "dedicated_cpus"}, {"uuid"}),
        ("2013-04-04", {"keys", "project_id", "devices"}, {"random_seed"}),
        ("2015-10-15", {"devices", "dedicated_cpus"}, {"keys", "project_id"}),
        ("2016-06-30", {"dedicated_cpus"}, {"devices"}),
        ("2020-10-14", set(), {"dedicated_cpus"}),
    ],
)
def test_meta_data_fields_follow_the_version(version: str, absent: set[str], present: set[str]) -> None:
    data = json.loads(render.render(bundle(), f"/openstack/{version}/meta_data.json", b"s" * 512).body)
    assert not absent & data.keys() and present <= data.keys()


def test_no_user_data_is_a_404_and_leaves_the_listings() -> None:
    quiet = bundle(user_data_b64=None, public_keys=[])
    assert render.render(quiet, "/openstack/latest/user_data").status == 404
    assert render.render(quiet, "/latest/user-data").status == 404
    assert b"user_data" not in render.render(quiet, "/openstack/latest/").body
    assert render.render(quiet, "/latest/").body == b"meta-data/"
    assert render.render(quiet, "/latest/meta-data/public-keys/").body == b""
    assert json.loads(render.render(quiet, "/openstack/latest/meta_data.json").body)["public_keys"] == {}


def test_network_data_dhcp_subnet() -> None:
    data = json.loads(render.render(bundle(), "/openstack/latest/network_data.json").body)
    assert data == {
        "links": [
            {
                "id": "tap" + PORT[:11],
                "vif_id": PORT,
                "type": "bridge",
                "mtu": 1500,
                "ethernet_mac_address": "fa:16:3e:12:34:56",
            }
        ],
        "networks": [{"id": "network0", "link": "tap" + PORT[:11], "network_id": NET, "type": "ipv4_dhcp"}],
        "services": [{"type": "dns", "address": "10.0.0.2"}],
    }


def test_network_data_static_subnet_carries_address_routes_and_dns() -> None:
    data = json.loads(
        render.render(bundle(ports=[port(dhcp=False)]), "/openstack/latest/network_data.json").body
    )
    assert data["networks"] == [
        {
            "id": "network0",
            "link": "tap" + PORT[:11],
            "network_id": NET,
            "type": "ipv4",
            "ip_address": "10.0.0.5",
            "netmask": "255.255.255.0",
            "routes": [
                {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"},
                {"network": "192.168.0.0", "netmask": "255.255.0.0", "gateway": "10.0.0.254"},
            ],
            "services": [{"type": "dns", "address": "10.0.0.2"}],
        }
    ]


def test_an_instance_without_ports_has_empty_network_data() -> None:
    data = json.loads(render.render(bundle(ports=[]), "/openstack/latest/network_data.json").body)
    assert data == {"links": [], "networks": [], "services": []}
    assert render.render(bundle(ports=[]), "/latest/meta-data/local-ipv4").body == b""


@pytest.mark.parametrize("dhcp", [True, False])
def test_cloud_init_turns_network_data_into_its_network_config(dhcp: bool) -> None:
    openstack = cloudinit("cloudinit.sources.helpers.openstack")
    network_json = json.loads(
        render.render(bundle(ports=[port(dhcp=dhcp)]), "/openstack/latest/network_data.json").body
    )
    config: dict[str, Any] = openstack.convert_net_json(
        network_json, known_macs={"fa:16:3e:12:34:56": "eth0"}
    )
    physical = [c for c in config["config"] if c["type"] == "physical"]
    assert [(c["name"], c["mac_address"], c["mtu"]) for c in physical] == [
        ("eth0", "fa:16:3e:12:34:56", 1500)
    ]
    subnet = physical[0]["subnets"][0]
    if dhcp:
        assert subnet["type"] == "dhcp4"
    else:
        assert (subnet["type"], subnet["address"], subnet["netmask"]) == (
            "static",
            "10.0.0.5",
            "255.255.255.0",
        )
        assert subnet["routes"][0]["gateway"] == "10.0.0.1"
    assert {"type": "nameserver", "address": "10.0.0.2"} in config["config"]


@pytest.mark.parametrize("version", [*render.OPENSTACK_VERSIONS, render.LATEST])
def test_meta_data_json_carries_the_admin_pass_when_the_server_has_one(version: str) -> None:
    path = f"/openstack/{version}/meta_data.json"
    assert json.loads(render.render(bundle(admin_pass="pw-1"), path, b"s" * 512).body)["admin_pass"] == "pw-1"
    assert "admin_pass" not in json.loads(render.render(bundle(), path, b"s" * 512).body)


def test_the_admin_pass_is_in_meta_data_json_only_and_never_in_a_repr() -> None:
    """Not in the EC2 tree (Nova's neither), nor in a bundle's repr (logs, assertion messages)."""
    secret = bundle(admin_pass="pw-only-here")
    assert b"pw-only-here" not in render.render(secret, "/latest/meta-data/", b"s" * 512).body
    assert "pw-only-here" not in json.dumps(render.ec2_meta_data(secret))
    assert "pw-only-here" not in repr(secret) and "pw-only-here" not in str(secret)
