"""The bridge a port's guest joins, made before the libvirt driver defines the guest."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from kumo.agent.drivers.base import DriverError
from kumo.agent.network.links import ensure_named_bridge, links


def addresses(name: str) -> str:
    return subprocess.run(["ip", "-o", "addr", "show", "dev", name], capture_output=True, text=True).stdout


def test_a_bridge_is_made_up_with_its_mtu_no_address_and_idempotently() -> None:
    name = "brqt" + uuid.uuid4().hex[:10]
    try:
        ensure_named_bridge(name, 1450)
        ensure_named_bridge(name, 1450)  # again: nothing changes, no error
        link = links()[name]
        assert (link.kind, link.mtu, link.up) == ("bridge", 1450, True)
        assert " inet " not in addresses(name)  # isolated from the host
        ensure_named_bridge(name, 1500)  # a changed network MTU is applied
        assert links()[name].mtu == 1500
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)
    assert name not in links()


def test_a_non_bridge_holding_the_name_is_refused() -> None:
    name = "brqt" + uuid.uuid4().hex[:10]
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"], check=True)
    try:
        with pytest.raises(DriverError, match="is not a bridge"):
            ensure_named_bridge(name, 1500)
    finally:
        subprocess.run(["ip", "link", "del", name], check=True)
