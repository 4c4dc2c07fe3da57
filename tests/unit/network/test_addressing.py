"""The pure addressing rules of subnets: CIDR, gateway, pools, the address choice, MACs."""

from __future__ import annotations

import ipaddress
import random

import pytest

from kumo.network import addressing
from kumo.network.addressing import Pool
from kumo.network.errors import GatewayConflictWithAllocationPools, InvalidInput

A = ipaddress.IPv4Address
NET24 = ipaddress.IPv4Network("10.0.0.0/24")


def pool(first: str, last: str) -> Pool:
    return Pool(A(first), A(last))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.5/24", "10.0.0.0/24"),
        (" 192.168.1.0/30 ", "192.168.1.0/30"),
        ("10.1.0.0/16", "10.1.0.0/16"),
        ("10.0.0.0/8", "10.0.0.0/8"),
    ],
)
def test_cidr_is_normalised(text: str, expected: str) -> None:
    assert str(addressing.parse_cidr(text)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fd00::/64", "IPv6 subnets are not supported"),
        ("10.0.0.0/31", "too small"),
        ("0.0.0.0/0", "too large"),
        ("169.254.0.0/24", "overlaps 169.254.0.0/16"),
        ("127.0.0.0/24", "overlaps 127.0.0.0/8"),
        ("239.1.0.0/16", "overlaps 224.0.0.0/3"),
        ("10.0.0.0/33", "not a valid IP subnet"),
        ("banana", "not a valid IP subnet"),
        (24, "not a valid IP subnet"),
    ],
)
def test_bad_cidrs_are_invalid_input(text: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        addressing.parse_cidr(text)


def test_default_pools_leave_out_the_gateway() -> None:
    assert addressing.default_pools(NET24, A("10.0.0.1")) == [pool("10.0.0.2", "10.0.0.254")]
    assert addressing.default_pools(NET24, A("10.0.0.254")) == [pool("10.0.0.1", "10.0.0.253")]
    assert addressing.default_pools(NET24, A("10.0.0.100")) == [
        pool("10.0.0.1", "10.0.0.99"),
        pool("10.0.0.101", "10.0.0.254"),
    ]
    assert addressing.default_pools(NET24, None) == [pool("10.0.0.1", "10.0.0.254")]


def test_gateway_must_be_a_host_of_the_subnet() -> None:
    addressing.check_gateway(NET24, A("10.0.0.1"))
    addressing.check_gateway(NET24, None)
    for bad in ("10.0.1.1", "10.0.0.0", "10.0.0.255"):
        with pytest.raises(InvalidInput, match="not a host address"):
            addressing.check_gateway(NET24, A(bad))


def test_pools_are_sorted_and_checked() -> None:
    raw = [{"start": "10.0.0.100", "end": "10.0.0.110"}, {"start": "10.0.0.10", "end": "10.0.0.20"}]
    assert addressing.parse_pools(NET24, raw, A("10.0.0.1")) == [
        pool("10.0.0.10", "10.0.0.20"),
        pool("10.0.0.100", "10.0.0.110"),
    ]


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        ([{"start": "10.0.0.20", "end": "10.0.0.10"}], InvalidInput, "start is after end"),
        ([{"start": "10.0.0.200", "end": "10.0.1.10"}], InvalidInput, "spans beyond"),
        ([{"start": "10.0.0.0", "end": "10.0.0.10"}], InvalidInput, "spans beyond"),
        (
            [{"start": "10.0.0.2", "end": "10.0.0.50"}, {"start": "10.0.0.50", "end": "10.0.0.60"}],
            InvalidInput,
            "overlapping",
        ),
        ([{"start": "10.0.0.1", "end": "10.0.0.50"}], GatewayConflictWithAllocationPools, "conflicts"),
        ([{"start": "10.0.0.2"}], InvalidInput, "exactly 'start' and 'end'"),
        ([], InvalidInput, "non-empty"),
    ],
)
def test_bad_pools(raw: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        addressing.parse_pools(NET24, raw, A("10.0.0.1"))


def test_subnets_of_one_network_never_overlap() -> None:
    addressing.check_no_overlap(NET24, ["10.0.1.0/24", "192.168.0.0/16"])
    with pytest.raises(InvalidInput, match="overlaps"):
        addressing.check_no_overlap(NET24, ["10.0.0.128/25"])


def test_without_a_cursor_the_choice_is_the_lowest_free_address_across_pools() -> None:
    pools = [pool("10.0.0.2", "10.0.0.4"), pool("10.0.0.10", "10.0.0.11")]
    assert addressing.choose_address(pools, set()) == "10.0.0.2"
    assert addressing.choose_address(pools, {"10.0.0.2", "10.0.0.3"}) == "10.0.0.4"
    assert addressing.choose_address(pools, {"10.0.0.2", "10.0.0.3", "10.0.0.4"}) == "10.0.0.10"
    full = {"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.10", "10.0.0.11"}
    assert addressing.choose_address(pools, full) is None
    # An address taken outside the pools (an explicit one) changes nothing.
    assert addressing.choose_address(pools, {"10.0.0.50"}) == "10.0.0.2"


POOLS = [pool("10.0.0.2", "10.0.0.4"), pool("10.0.0.10", "10.0.0.11")]


@pytest.mark.parametrize(
    ("after", "taken", "chosen"),
    [
        ("10.0.0.2", set(), "10.0.0.3"),  # next-fit: after the cursor, though .2 is free
        ("10.0.0.3", {"10.0.0.4"}, "10.0.0.10"),  # on into the next pool
        ("10.0.0.4", set(), "10.0.0.10"),
        ("10.0.0.11", set(), "10.0.0.2"),  # the last address: wrap to the first pool
        ("10.0.0.10", {"10.0.0.11", "10.0.0.2"}, "10.0.0.3"),  # wrap, skipping taken ones
        ("10.0.0.3", {"10.0.0.4", "10.0.0.10", "10.0.0.11", "10.0.0.2"}, "10.0.0.3"),  # a full lap
        ("10.0.0.7", set(), "10.0.0.10"),  # a cursor between pools (pools edited since)
        ("10.0.0.1", set(), "10.0.0.2"),  # before every pool
        ("10.0.0.200", set(), "10.0.0.2"),  # after every pool
    ],
)
def test_next_fit_chooses_the_next_free_address_after_the_cursor_wrapping(
    after: str, taken: set[str], chosen: str
) -> None:
    assert addressing.choose_address(POOLS, taken, A(after)) == chosen


def test_next_fit_full_pools_give_none_and_a_freed_address_waits_for_the_wrap() -> None:
    full = {"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.10", "10.0.0.11"}
    assert addressing.choose_address(POOLS, full, A("10.0.0.3")) is None
    # Allocate like IPAM does: free .2 right after it was handed out; it comes back last.
    taken: set[str] = set()
    cursor = None
    order = []
    for _ in range(5):
        chosen = addressing.choose_address(POOLS, taken, cursor)
        assert chosen is not None
        order.append(chosen)
        taken.add(chosen)
        cursor = A(chosen)
        if chosen == "10.0.0.2":
            taken.discard(chosen)
    assert order == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.10", "10.0.0.11"]
    assert addressing.choose_address(POOLS, taken, cursor) == "10.0.0.2"


def test_macs_are_neutrons_base_with_random_tail() -> None:
    rng = random.Random(7)
    macs = {addressing.random_mac(rng) for _ in range(50)}
    assert len(macs) == 50
    assert all(mac.startswith("fa:16:3e:") and len(mac) == 17 for mac in macs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("FA-16-3E-00-00-01", "fa:16:3e:00:00:01"), ("52:54:00:aa:bb:01", "52:54:00:aa:bb:01")],
)
def test_macs_are_normalised(text: str, expected: str) -> None:
    assert addressing.normalise_mac(text) == expected


@pytest.mark.parametrize(
    "text", ["01:00:5e:00:00:01", "00:00:00:00:00:00", "fa:16:3e:00:00", "zz:16:3e:00:00:01", 5]
)
def test_bad_macs(text: object) -> None:
    with pytest.raises(InvalidInput, match="not a valid MAC"):
        addressing.normalise_mac(text)


def test_host_routes_and_nameservers() -> None:
    routes = addressing.parse_host_routes([{"destination": "192.168.0.5/16", "nexthop": "10.0.0.9"}])
    assert routes == [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.9"}]
    assert addressing.parse_nameservers(["8.8.8.8", "1.1.1.1"]) == ["8.8.8.8", "1.1.1.1"]
    with pytest.raises(InvalidInput, match="Duplicate"):
        addressing.parse_nameservers(["8.8.8.8", "8.8.8.8"])
    with pytest.raises(InvalidInput, match="exactly 'destination' and 'nexthop'"):
        addressing.parse_host_routes([{"destination": "0.0.0.0/0"}])
