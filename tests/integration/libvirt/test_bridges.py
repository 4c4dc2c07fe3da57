"""The bridge the libvirt driver makes for a port's network before it defines the guest."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from kumo.agent.drivers.base import DriverError
from kumo.agent.libvirt.bridges import delete_bridge, ensure_bridge, link_kind

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="making bridges needs root")


def link(name: str) -> dict[str, object]:
    out = subprocess.run(["ip", "-d", "-j", "link", "show", "dev", name], capture_output=True, text=True)
    return dict(json.loads(out.stdout)[0])


def test_ensure_bridge_makes_it_up_with_the_mtu_and_is_idempotent() -> None:
    name = "brqt" + uuid.uuid4().hex[:10]
    try:
        ensure_bridge(name, 1450)
        ensure_bridge(name, 1450)  # again: nothing changes, no error
        info = link(name)
        assert link_kind(name) == "bridge" and info["mtu"] == 1450 and "UP" in info["flags"]  # type: ignore[operator]
        assert "addr_info" not in info or not info["addr_info"]  # no address: isolated from the host
        ensure_bridge(name, 1500)  # a changed network MTU is applied
        assert link(name)["mtu"] == 1500
    finally:
        delete_bridge(name)
    assert link_kind(name) is None
    delete_bridge(name)  # gone already: fine


def test_a_non_bridge_holding_the_name_is_refused() -> None:
    name = "brqt" + uuid.uuid4().hex[:10]
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"], check=True)
    try:
        with pytest.raises(DriverError, match="is not a bridge"):
            ensure_bridge(name, 1500)
    finally:
        subprocess.run(["ip", "link", "del", name], check=True)
