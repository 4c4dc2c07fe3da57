"""FileStore: hashes while writing, all-or-nothing writes, streamed reads."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kumo.errors import NotFound
from kumo.image.store import FileStore


def test_put_open_delete(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "images", chunk_size=1000)
    image_id = str(uuid.uuid4())
    chunks = [b"a" * 2500, b"", b"b" * 10]
    data = b"".join(chunks)
    stored = store.put(image_id, iter(chunks))
    assert stored == (len(data), hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest())
    read = list(store.open(image_id))
    assert b"".join(read) == data
    assert [len(c) for c in read] == [1000, 1000, 510]
    assert [p.name for p in (tmp_path / "images").iterdir()] == [image_id]
    store.delete(image_id)
    store.delete(image_id)  # idempotent
    with pytest.raises(NotFound):
        store.open(image_id)


def test_failed_put_leaves_nothing_and_keeps_previous_data(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    image_id = str(uuid.uuid4())
    store.put(image_id, [b"previous"])

    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.put(image_id, broken())
    assert [p.name for p in tmp_path.iterdir()] == [image_id]
    assert b"".join(store.open(image_id)) == b"previous"


def test_open_is_eager_and_survives_delete(tmp_path: Path) -> None:
    store = FileStore(tmp_path, chunk_size=4)
    image_id = str(uuid.uuid4())
    store.put(image_id, [b"0123456789"])
    reader = store.open(image_id)
    store.delete(image_id)
    assert b"".join(reader) == b"0123456789"


@pytest.mark.parametrize("bad_id", ["../escape", "", "not-a-uuid", "/etc/passwd"])
def test_refuses_ids_that_are_not_uuids(tmp_path: Path, bad_id: str) -> None:
    store = FileStore(tmp_path / "images")
    with pytest.raises(NotFound):
        store.put(bad_id, [b"x"])
    with pytest.raises(NotFound):
        store.open(bad_id)
    assert not (tmp_path / "escape").exists()
