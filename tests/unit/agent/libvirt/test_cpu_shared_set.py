"""The libvirt driver's cpu_shared_set: a CPU list that does not parse stops the driver before it
connects to libvirtd or writes anything (the list's own rules: test_domain.py); one naming CPUs
the host does not have online stops it once connected (libvirt's getCPUMap), naming them. The
test driver's host has 8 CPUs, 0, 2 and 4 online."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kumo.agent.drivers import libvirt as libvirt_driver
from kumo.agent.drivers.base import DriverError
from kumo.agent.drivers.libvirt import LibvirtDriver


@pytest.mark.parametrize("bad", ["0-", "^0", "x"])
def test_a_bad_cpu_shared_set_stops_the_driver_before_it_connects(tmp_path: Path, bad: str) -> None:
    pytest.importorskip("libvirt")
    with pytest.raises(DriverError, match="cpu_shared_set: Invalid CPU list"):
        LibvirtDriver("h1", uri="test:///nowhere", state_dir=tmp_path / "s", cpu_shared_set=bad)
    assert not (tmp_path / "s").exists()


class LibvirtTestDriverConnection:
    """The driver's Connection over libvirt's test driver (its host: 8 CPUs, 0, 2 and 4 online),
    which has no keepalive for the real Connection to set."""

    def __init__(self, uri: str, on_domain_event: Any) -> None:
        import libvirt

        self.conn = libvirt.open("test:///default")
        self.closed = False

    def get(self) -> Any:
        return self.conn

    def close(self) -> None:
        self.closed = True
        self.conn.close()


@pytest.mark.parametrize(
    ("cpus", "missing"), [("9", "9"), ("0-1", "1"), ("0-7", "1,3,5-7"), ("2,4,100-101", "100-101")]
)
def test_a_cpu_shared_set_naming_cpus_the_host_lacks_stops_the_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpus: str, missing: str
) -> None:
    pytest.importorskip("libvirt")
    monkeypatch.setattr(libvirt_driver, "Connection", LibvirtTestDriverConnection)
    with pytest.raises(DriverError) as caught:
        LibvirtDriver("h1", uri="test:///default", state_dir=tmp_path / "s", cpu_shared_set=cpus)
    assert str(caught.value) == (
        f"cpu_shared_set: host CPUs {missing} do not exist or are offline (this host's online CPUs: 0,2,4)"
    )


def test_a_cpu_shared_set_of_online_cpus_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("libvirt")
    monkeypatch.setattr(libvirt_driver, "Connection", LibvirtTestDriverConnection)
    driver = LibvirtDriver(
        "h1", uri="test:///default", state_dir=tmp_path / "s", cpu_shared_set="0,^1,2-4,^3"
    )
    try:
        assert (driver.cpuset, driver.cpu_cores) == ("0,2,4", 3.0)
    finally:
        driver.close()
