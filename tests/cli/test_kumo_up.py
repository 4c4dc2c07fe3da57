"""`kumo up`, the all-in-one, as a user runs it: migrate, bootstrap, agents, a demo server, the
next commands; then the unmodified `openstack` CLI against the clouds.yaml it wrote."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

KUMO = str(Path(sys.executable).parent / "kumo")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_up(state: Path, *args: str, timeout: float = 300) -> str:
    env = {**os.environ, "KUMO_STATE_DIR": str(state), "COLUMNS": "200"}
    done = subprocess.run(
        [KUMO, "up", "--exit", "--state-dir", str(state), "--port", str(free_port()), *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_up_with_the_fake_driver_boots_the_demo_server(tmp_path: Path) -> None:
    out = run_up(tmp_path / "state", "--driver", "fake", "--hosts", "2")
    assert "compute-1: fake driver (asked for)" in out
    assert "demo-server" in out and "is ACTIVE in az" in out
    assert "openstack --os-cloud kumo server list --all-projects" in out
    clouds = yaml.safe_load((tmp_path / "state" / "clouds.yaml").read_text())
    assert set(clouds["clouds"]) == {"kumo", "kumo-demo"}


def test_up_says_why_it_falls_back_to_fake(tmp_path: Path) -> None:
    if os.geteuid() == 0 and Path("/var/run/libvirt/libvirt-sock").exists():
        pytest.skip("libvirt is usable here: the fallback is covered by tests/unit/allinone")
    out = run_up(tmp_path / "state", "--hosts", "1")
    assert "falling back to the fake driver" in out and "is ACTIVE" in out
