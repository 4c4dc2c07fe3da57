"""A process that builds its runtime is wired: the store chooser and the hooks are registered
by kumo.wiring.build_runtime alone (run in a fresh interpreter: this test session's fixtures
install them already)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_PROGRAM = """
import sys, tempfile
from pathlib import Path
from kumo.config import Settings
from kumo.work import hooks
from kumo.wiring import build_runtime
assert not hooks.registered(), "nothing installed before the runtime is built"
rt = build_runtime(Settings(state_dir=Path(tempfile.mkdtemp())))
assert len(hooks.registered()) == 4, hooks.registered()
print(type(rt.db.store).__name__)
"""


def test_build_runtime_registers_the_store_chooser_and_the_hooks() -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM], cwd=root, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SqliteStore"
