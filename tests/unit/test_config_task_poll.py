"""task_poll_recheck_seconds: how often an idle agent's long poll re-reads its host's work
(kumo/agent/routes.py); 2 s unless set, from KUMO_TASK_POLL_RECHECK_SECONDS, and never 0 or
less (a poll that would re-read the database in a busy loop)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from kumo.config import Settings


def test_the_default_is_the_former_constant(tmp_path: Path) -> None:
    assert Settings(state_dir=tmp_path).task_poll_recheck_seconds == 2.0


def test_the_environment_sets_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUMO_TASK_POLL_RECHECK_SECONDS", "10")
    assert Settings(state_dir=tmp_path).task_poll_recheck_seconds == 10.0


@pytest.mark.parametrize("value", [0, -1.5])
def test_zero_or_less_is_refused(tmp_path: Path, value: float) -> None:
    with pytest.raises(ValidationError, match="task_poll_recheck_seconds"):
        Settings(state_dir=tmp_path, task_poll_recheck_seconds=value)
