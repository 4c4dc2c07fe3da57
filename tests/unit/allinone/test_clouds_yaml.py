"""`kumo up`'s clouds.yaml holds the passwords: its owner's only (0600) from its creation on,
whatever the umask, also when it replaces one left readable by others."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

from kumo.allinone import write_clouds_yaml


def test_clouds_yaml_is_private(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        fresh, left_open = tmp_path / "fresh.yaml", tmp_path / "left-open.yaml"
        left_open.write_text("old")
        left_open.chmod(0o644)
        for path in (fresh, left_open):
            write_clouds_yaml(path, "http://127.0.0.1:8780", "RegionOne", "admin-pw", "demo-pw")
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            clouds = yaml.safe_load(path.read_text())["clouds"]
            assert clouds["kumo"]["auth"]["password"] == "admin-pw"
    finally:
        os.umask(previous)
