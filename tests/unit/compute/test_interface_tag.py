"""2.70: `tag` (null: kumo keeps no device tags) in os-interface bodies, absent before."""

from __future__ import annotations

import pytest

from kumo.compute.microversion import Microversion
from kumo.compute.routes.server_networks import _tagged


@pytest.mark.parametrize(("minor", "tagged"), [(69, False), (70, True), (96, True)])
def test_interface_tag(minor: int, tagged: bool) -> None:
    body = _tagged({"port_id": "p"}, Microversion(2, minor))
    assert ("tag" in body) is tagged
    if tagged:
        assert body["tag"] is None
