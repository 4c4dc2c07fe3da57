"""2.70: the NIC's device `tag` (null when none) in os-interface bodies, absent before."""

from __future__ import annotations

import pytest

from kumo.compute.microversion import Microversion
from kumo.compute.routes.server_networks import _tagged


@pytest.mark.parametrize(("minor", "tagged"), [(69, False), (70, True), (96, True)])
def test_interface_tag(minor: int, tagged: bool) -> None:
    for tag in (None, "nic1"):
        body = _tagged({"port_id": "p", "tag": tag}, Microversion(2, minor))
        assert body == ({"port_id": "p", "tag": tag} if tagged else {"port_id": "p"})
