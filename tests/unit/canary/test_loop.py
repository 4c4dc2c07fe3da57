"""The canary loop's key preparation (made once, under a temporary name; its `.pub` rebuilt;
a typed error saying why it cannot be made) and its thread surviving a pass that fails."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kumo.canary.loop import CanaryLoop, KeyPairFailed, prepare_key
from kumo.canary.policy import CanaryPolicy


def test_the_key_is_made_once_and_its_public_half_rebuilt(tmp_path: Path) -> None:
    key, public = prepare_key(tmp_path / "keys")
    assert key == tmp_path / "keys" / "id_ed25519" and public.startswith("ssh-ed25519 ")
    assert sorted(p.name for p in key.parent.iterdir()) == ["id_ed25519", "id_ed25519.pub"]  # no temp left
    assert prepare_key(tmp_path / "keys") == (key, public)  # the same key again
    key.with_name("id_ed25519.pub").unlink()
    again, rebuilt = prepare_key(tmp_path / "keys")
    assert again == key and rebuilt.split()[:2] == public.split()[:2]


def test_a_key_that_cannot_be_made_is_a_key_pair_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(KeyPairFailed, match="the canary's key in"):
        prepare_key(tmp_path / "file" / "keys")  # not a directory
    monkeypatch.setenv("PATH", str(tmp_path))  # no ssh-keygen
    with pytest.raises(KeyPairFailed, match="ssh-keygen: .*No such file"):
        prepare_key(tmp_path / "keys")
    assert not (tmp_path / "keys" / "id_ed25519").exists()


@pytest.mark.parametrize(
    "failure",
    [
        KeyPairFailed("ssh-keygen: not found"),
        FileNotFoundError(2, "No such file or directory", "ssh-keygen"),
        PermissionError(13, "Permission denied"),
        subprocess.CalledProcessError(1, ["ssh-keygen"]),
        subprocess.TimeoutExpired(["ssh-keygen"], 60),
    ],
)
def test_the_loop_keeps_looping_when_a_pass_fails(
    failure: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = CanaryLoop(
        "http://kumo", lambda: "token", lambda api: pytest.fail("no spec"), CanaryPolicy(), tick=0
    )
    passes: list[int] = []

    def pass_once() -> list[object]:
        passes.append(1)
        if len(passes) == 1:
            raise failure
        loop.stop_event.set()
        return []

    monkeypatch.setattr(loop, "pass_once", pass_once)
    loop.run()
    assert len(passes) == 2
