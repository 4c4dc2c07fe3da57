"""The libvirt driver's cpu_shared_set: a CPU list that does not parse stops the driver before it
connects to libvirtd or writes anything (the list's own rules: test_domain.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumo.agent.drivers.base import DriverError
from kumo.agent.drivers.libvirt import LibvirtDriver


@pytest.mark.parametrize("bad", ["0-", "^0", "x"])
def test_a_bad_cpu_shared_set_stops_the_driver_before_it_connects(tmp_path: Path, bad: str) -> None:
    pytest.importorskip("libvirt")
    with pytest.raises(DriverError, match="cpu_shared_set: Invalid CPU list"):
        LibvirtDriver("h1", uri="test:///nowhere", state_dir=tmp_path / "s", cpu_shared_set=bad)
    assert not (tmp_path / "s").exists()
