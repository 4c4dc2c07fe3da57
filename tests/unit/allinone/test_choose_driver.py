"""`kumo up` takes libvirt when the machine can run guests through it, and says when it cannot."""

from __future__ import annotations

import pytest

from kumo import allinone
from kumo.agent.drivers import libvirt


def test_auto_takes_libvirt_when_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libvirt, "unusable_reason", lambda: None)
    assert allinone.choose_driver("auto") == ("libvirt", "libvirt/QEMU: real guests")


def test_auto_falls_back_to_fake_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        libvirt, "unusable_reason", lambda: "cannot connect to libvirt at qemu:///system: gone"
    )
    driver, why = allinone.choose_driver("auto")
    assert driver == "fake"
    assert why == (
        "libvirt is not usable here (cannot connect to libvirt at qemu:///system: gone); "
        "falling back to the fake driver"
    )


def test_libvirt_asked_for_but_unusable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libvirt, "unusable_reason", lambda: "qemu-img is not installed")
    with pytest.raises(SystemExit, match="qemu-img is not installed"):
        allinone.choose_driver("libvirt")


def test_fake_asked_for_never_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    def probe() -> str:
        raise AssertionError("probed")

    monkeypatch.setattr(libvirt, "unusable_reason", probe)
    assert allinone.choose_driver("fake")[0] == "fake"
