"""Run the real `kumo` command (beside the test's python) with the osc fixture's clouds.yaml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import OpenStackCLI


def kumo(
    osc: OpenStackCLI, *args: str, cloud: str = "kumo", check: bool = True
) -> subprocess.CompletedProcess[str]:
    binary = str(Path(sys.executable).parent / "kumo")
    env = {**osc.env, "OS_CLOUD": cloud, "COLUMNS": "200"}
    proc = subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"kumo {' '.join(args)} exited {proc.returncode}\n{proc.stderr}\n{proc.stdout}")
    return proc
