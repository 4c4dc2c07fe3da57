"""Settings.secret: a secret generated on first use is one value for every caller, even when
many generate it at once (each through a temporary file of its own, the first published wins),
readable by its owner only, with no temporary file left behind; the environment's value wins."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from kumo.config import Settings


def test_secrets_generated_at_once_agree_and_stay_private(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    start = threading.Barrier(16)
    seen: list[str] = []

    def generate() -> None:
        start.wait()
        seen.append(settings.secret("shared_secret"))

    threads = [threading.Thread(target=generate) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 16 and len(set(seen)) == 1 and len(seen[0]) >= 32
    path = tmp_path / "shared_secret.secret"
    assert path.read_text() == seen[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    assert [p.name for p in tmp_path.iterdir()] == ["shared_secret.secret"]  # no temporary file left
    assert settings.secret("shared_secret") == seen[0]  # read back, not generated again
    assert Settings(state_dir=tmp_path, agent_token="given").secret("agent_token") == "given"
