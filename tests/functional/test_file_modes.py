"""Files kumo writes are its own user's only: the state directory 0700; the SQLite database,
its -wal and -shm, the secrets and the image files 0600, whatever the process umask, and
tightened when an older kumo left them wider."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from kumo.config import write_private
from tests.conftest import Cloud, start_cloud
from tests.functional.helpers import upload_image


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The widest usual umask (022): files open to reading by everyone unless kumo says not."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _upload_image(cloud: Cloud) -> str:
    with cloud.client() as c:
        return upload_image(c, content=b"secret image bytes")


def _assert_private(cloud: Cloud, image_id: str) -> None:
    state = cloud.settings.state_dir
    assert mode(state) == 0o700
    for name in ("kumo.db", "kumo.db-wal", "kumo.db-shm", "token_key.secret", "agent_token.secret"):
        assert mode(state / name) == 0o600, name
    images = cloud.settings.resolved_image_dir
    assert mode(images) == 0o700
    assert mode(images / image_id) == 0o600
    assert [p.name for p in state.iterdir() if mode(p) & 0o077] == []


def test_a_new_cloud_keeps_its_files_private(tmp_path: Path, open_umask: None) -> None:
    cloud = start_cloud(tmp_path)
    try:
        _assert_private(cloud, _upload_image(cloud))
    finally:
        cloud.server.stop()


def test_files_an_older_kumo_left_readable_are_tightened(
    tmp_path: Path, sqlite_template: Path, open_umask: None
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "agent_token.secret").write_text("an-older-agent-token")
    (state / "images").mkdir(mode=0o755)
    assert mode(state) == 0o755 and mode(state / "agent_token.secret") == 0o644
    cloud = start_cloud(tmp_path, template=sqlite_template)  # copies the database, 0644
    try:
        assert cloud.settings.secret("agent_token") == "an-older-agent-token"
        _assert_private(cloud, _upload_image(cloud))
    finally:
        cloud.server.stop()


def test_images_an_older_kumo_left_readable_are_tightened_at_startup(
    tmp_path: Path, sqlite_template: Path, open_umask: None
) -> None:
    """Before any upload: the store is made private when the API starts, not by the next put."""
    images = tmp_path / "state" / "images"
    images.mkdir(mode=0o755, parents=True)
    old = images / "6f1ab1d4-4c59-4f3c-9b0c-2f0b6ad0a001"
    old.write_bytes(b"an image stored by an older kumo")
    assert mode(images) == 0o755 and mode(old) == 0o644
    cloud = start_cloud(tmp_path, template=sqlite_template)
    try:
        assert cloud.settings.resolved_image_dir == images
        assert mode(images) == 0o700
        assert mode(old) == 0o600
    finally:
        cloud.server.stop()


def test_write_private_is_never_readable_by_others(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        left_open = tmp_path / "left-open"
        left_open.write_text("old")
        left_open.chmod(0o666)
        for path in (tmp_path / "new", left_open):
            write_private(path, "value")
            assert path.read_text() == "value" and mode(path) == 0o600
    finally:
        os.umask(previous)
