"""`kumo up`'s demo network: its gateway is the subnet's first address, a subnet this machine
already routes is refused with the route named, and the banner's journey uses the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumo import allinone
from kumo.agent.network.links import Route

ROUTES = [Route("default", "eth0"), Route("192.168.1.0/24", "eth0"), Route("10.0.0.0/8", "wg0")]


@pytest.mark.parametrize(
    ("cidr", "gateway"),
    [
        ("172.24.4.0/24", "172.24.4.1/24"),
        ("10.250.0.0/16", "10.250.0.1/16"),
        ("192.0.2.8/29", "192.0.2.9/29"),
    ],
)
def test_the_gateway_is_the_subnets_first_address(cidr: str, gateway: str) -> None:
    assert allinone.public_gateway(cidr) == gateway


@pytest.mark.parametrize(
    ("cidr", "why"),
    [("172.24.4.1/24", "has host bits set"), ("172.24.4.0/30", "too small"), ("public", "Expected 4 octets")],
)
def test_a_malformed_public_network_is_refused(cidr: str, why: str) -> None:
    with pytest.raises(SystemExit, match=f"--public-network {cidr}: .*{why}"):
        allinone.public_gateway(cidr)


def test_a_free_subnet_passes() -> None:
    allinone.check_public_cidr("172.24.4.0/24", ROUTES)  # the default route never collides


@pytest.mark.parametrize(
    ("cidr", "route"), [("192.168.1.0/24", "192.168.1.0/24 dev eth0"), ("10.9.0.0/24", "10.0.0.0/8 dev wg0")]
)
def test_a_subnet_this_machine_routes_is_refused_naming_the_route(cidr: str, route: str) -> None:
    with pytest.raises(SystemExit) as caught:
        allinone.check_public_cidr(cidr, ROUTES)
    assert str(caught.value) == (
        f"the public network {cidr} overlaps this machine's route(s) {route}: "
        "choose a free subnet with --public-network CIDR"
    )


def test_the_journey_with_real_guests_ends_in_ssh_from_this_machine() -> None:
    lines = allinone.next_commands(Path("/s/clouds.yaml"), "r1.tiny", "kumo-test-image", real=True)
    demo = "openstack --os-cloud kumo-demo"
    assert lines[3:] == [
        f"{demo} keypair create --public-key ~/.ssh/id_ed25519.pub mykey",
        f"{demo} security group rule create --protocol tcp --dst-port 22 default",
        f"{demo} server create --flavor r1.tiny --image kumo-test-image --network public --key-name mykey"
        " --wait my-server",
        f"{demo} server list",
        "ssh root@<my-server's public address>",
        f"{demo} console log show my-server",
    ]
    fake = allinone.next_commands(Path("/s/clouds.yaml"), "m1.tiny", "demo-image", real=False)
    assert not any("ssh" in line or "keypair" in line for line in fake)
    create = f"{demo} server create --flavor m1.tiny --image demo-image --network public --wait my-server"
    assert create in fake
