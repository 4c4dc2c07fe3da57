"""The host image cache against an in-memory image source: verification, single flight,
references and eviction."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kumo.agent.imagecache import ImageCache, ImageCacheError, ImageMeta


class FakeSource:
    """Images in memory; `serve` may differ from what the metadata promises (corruption)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.images: dict[str, bytes] = {}
        self.served: dict[str, bytes] = {}
        self.downloads: dict[str, int] = {}
        self.delay = delay
        self.lock = threading.Lock()

    def add(self, data: bytes, status: str = "active") -> str:
        image_id = str(uuid.uuid4())
        self.images[image_id] = data
        self.served[image_id] = data
        self.status = status
        return image_id

    def metadata(self, image_id: str) -> ImageMeta:
        data = self.images[image_id]
        return ImageMeta(image_id, self.status, "raw", len(data), "sha512", hashlib.sha512(data).hexdigest())

    def chunks(self, image_id: str) -> Iterator[bytes]:
        with self.lock:
            self.downloads[image_id] = self.downloads.get(image_id, 0) + 1
        data = self.served[image_id]
        for start in range(0, len(data), 1000):
            time.sleep(self.delay)
            yield data[start : start + 1000]


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


@pytest.fixture
def cache(tmp_path: Path, source: FakeSource) -> ImageCache:
    return ImageCache(tmp_path / "cache", source, max_age=3600)


def test_first_use_downloads_and_verifies_later_uses_do_not(cache: ImageCache, source: FakeSource) -> None:
    image_id = source.add(b"x" * 5000)
    first = cache.acquire(image_id, "vm-1")
    second = cache.acquire(image_id, "vm-2")
    assert first.path == second.path and first.path.read_bytes() == b"x" * 5000
    assert source.downloads[image_id] == 1
    assert first.path.stat().st_mode & 0o777 == 0o444  # bases are read-only
    [entry] = cache.report()
    assert entry["id"] == image_id and entry["downloads"] == 1 and entry["instances"] == ["vm-1", "vm-2"]


def test_concurrent_first_uses_wait_for_one_download(tmp_path: Path) -> None:
    source = FakeSource(delay=0.01)  # 20 chunks: long enough for every thread to pile up
    cache = ImageCache(tmp_path / "cache", source)
    image_id = source.add(b"y" * 20_000)
    errors: list[BaseException] = []

    def boot(owner: str) -> None:
        try:
            cache.acquire(image_id, owner)
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=boot, args=(f"vm-{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert source.downloads[image_id] == 1
    assert len(cache.report()[0]["instances"]) == 8


@pytest.mark.parametrize("served", [b"z" * 4999 + b"!", b"z" * 2500, b"z" * 6000])
def test_corrupt_short_or_long_data_is_rejected_and_not_kept(
    cache: ImageCache, source: FakeSource, served: bytes
) -> None:
    image_id = source.add(b"z" * 5000)
    source.served[image_id] = served
    with pytest.raises(ImageCacheError, match=image_id):
        cache.acquire(image_id, "vm-1")
    assert cache.report() == []
    assert [p.name for p in cache.root.iterdir() if p.is_file()] == []
    source.served[image_id] = source.images[image_id]  # fixed at the source: retried, then used
    assert cache.acquire(image_id, "vm-1").path.read_bytes() == b"z" * 5000
    assert source.downloads[image_id] == 2


def test_an_interrupted_download_leaves_nothing_usable(cache: ImageCache, source: FakeSource) -> None:
    image_id = source.add(b"a" * 5000)

    def broken(_image_id: str) -> Iterator[bytes]:
        yield b"a" * 1000
        raise OSError("connection reset")

    source.chunks = broken  # type: ignore[method-assign]
    with pytest.raises(OSError):
        cache.acquire(image_id, "vm-1")
    assert not (cache.root / image_id).exists()
    assert not list(cache.root.glob(".*.part"))


def test_images_not_active_or_with_bad_ids_are_refused(cache: ImageCache, source: FakeSource) -> None:
    image_id = source.add(b"q", status="queued")
    with pytest.raises(ImageCacheError, match="not active"):
        cache.acquire(image_id, "vm-1")
    with pytest.raises(ImageCacheError, match="could not be found"):
        cache.acquire("../../etc/passwd", "vm-1")


def test_eviction_takes_only_unused_images_past_their_age(cache: ImageCache, source: FakeSource) -> None:
    used, unused = source.add(b"u" * 10), source.add(b"n" * 10)
    cache.acquire(used, "vm-1")
    cache.acquire(unused, "vm-2")
    cache.release_owner("vm-2")
    assert cache.evict() == []  # released just now: younger than max_age
    assert cache.evict(now=time.time() + 7200) == [unused]
    assert {e["id"] for e in cache.report()} == {used}  # still referenced: kept however old
    assert not (cache.root / unused).exists()
    cache.release_owner("vm-1")
    assert cache.evict(max_age=0) == [used]
    assert cache.report() == []


def test_eviction_sweeps_partial_downloads_a_crash_left(cache: ImageCache, source: FakeSource) -> None:
    image_id = source.add(b"p" * 10)
    orphan = cache.root / f".{image_id}.deadbeef.part"
    orphan.write_bytes(b"p" * 3)
    cache.evict()
    assert not orphan.exists()
