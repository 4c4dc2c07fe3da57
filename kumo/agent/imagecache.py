"""The host image cache: each image is downloaded from kumo's image API at most once per host,
verified, and shared read-only by every instance on the host that boots from it.

On disk, under one directory:

    <image_id>              the verified image data (mode 0444); present only once verified
    <image_id>.json         what it is: size, disk format, hash, when it was fetched
    .<image_id>.<rnd>.part  a download in progress (never used; swept when found orphaned)
    .locks/<image_id>       flock() per image: single flight across threads and processes
    refs/<image_id>/<owner> one empty file per instance using the image

Rules:
- A download streams into a `.part` file while hashing; it becomes `<image_id>` by rename only
  once its size and `os_hash_value` match the image service's. A partial, corrupt or
  interrupted download is deleted, never used.
- Concurrent boots of one image serialize on its lock: the first downloads, the others find it
  cached (single flight). Different images download in parallel.
- An image with no references whose last use is older than `max_age` is evicted; an image in
  use never is, nor one pinned by a precache job (`pin`: until its `pinned_until`). Last use
  is the modification time of its refs directory (it changes whenever a reference is added or
  removed), so using the cache costs no extra writes.
- Instances' own data (overlays) never lives here.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from kumo.agent.drivers.base import DriverError


class ImageCacheError(DriverError):
    """The image cannot be cached: missing, not active, unverifiable or corrupt."""


class ImageVerificationError(ImageCacheError):
    """The data arrived whole but does not match the image's size or os_hash_value."""


class DownloadFailed(ImageCacheError):
    """The source failed while sending (its connection or its answer), not this host."""


@dataclass(frozen=True)
class ImageMeta:
    id: str
    status: str
    disk_format: str | None
    size: int | None
    hash_algo: str | None
    hash_value: str | None
    # Every attribute the image service shows, core and extra (kernel_id, os_command_line…).
    properties: dict[str, Any] = field(default_factory=dict)


class ImageSource(Protocol):
    def metadata(self, image_id: str) -> ImageMeta: ...

    def chunks(self, image_id: str) -> Iterator[bytes]:
        """The image data, streamed."""
        ...


@dataclass(frozen=True)
class CachedImage:
    path: Path
    meta: ImageMeta


class ImageCache:
    def __init__(self, root: Path, source: ImageSource, max_age: float = 24 * 3600.0) -> None:
        self.root = root
        self.source = source
        self.max_age = max_age
        for directory in (root, root / ".locks", root / "refs"):
            directory.mkdir(parents=True, exist_ok=True)

    # -- paths -----------------------------------------------------------------------------
    def _data(self, image_id: str) -> Path:
        return self.root / image_id

    def _sidecar(self, image_id: str) -> Path:
        return self.root / f"{image_id}.json"

    def _refs(self, image_id: str) -> Path:
        return self.root / "refs" / image_id

    @staticmethod
    def _check_id(image_id: str) -> str:
        try:
            return str(uuid.UUID(image_id))
        except (ValueError, TypeError):
            raise ImageCacheError(f"Image {image_id} could not be found.") from None

    @contextlib.contextmanager
    def _locked(self, image_id: str, blocking: bool = True) -> Iterator[bool]:
        """Hold the image's lock; yields False (without waiting) when not blocking and busy."""
        with open(self.root / ".locks" / image_id, "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- use -------------------------------------------------------------------------------
    def acquire(self, image_id: str, owner: str) -> CachedImage:
        """The image's verified local copy, downloaded now if needed; `owner` (an instance
        uuid) holds a reference until `release_owner`."""
        image_id = self._check_id(image_id)
        meta = self.source.metadata(image_id)
        if meta.status != "active":
            raise ImageCacheError(f"Image {image_id} is not active (status {meta.status}).")
        if not meta.hash_algo or not meta.hash_value:
            raise ImageCacheError(f"Image {image_id} has no os_hash_value: refusing unverifiable data.")
        with self._locked(image_id):
            if not self._is_cached(meta):
                self._fetch(meta)
            refs = self._refs(image_id)
            refs.mkdir(exist_ok=True)
            (refs / owner).touch()
        return CachedImage(self._data(image_id), meta)

    def release_owner(self, owner: str) -> None:
        """Drop every reference `owner` holds (its images become evictable once unused)."""
        for ref in (self.root / "refs").glob(f"*/{owner}"):
            ref.unlink(missing_ok=True)

    def _read_sidecar(self, image_id: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._sidecar(image_id).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _is_cached(self, meta: ImageMeta) -> bool:
        recorded = self._read_sidecar(meta.id)
        if recorded is None or not self._data(meta.id).is_file():
            return False
        if recorded.get("hash_value") == meta.hash_value and recorded.get("hash_algo") == meta.hash_algo:
            return True
        if self._owners(meta.id):
            # Images are immutable once active; a different hash means the service's record
            # changed under running guests. Never swap a base out from under an overlay.
            raise ImageCacheError(f"Cached image {meta.id} differs from the image service's and is in use.")
        return False

    def is_cached(self, meta: ImageMeta) -> bool:
        """Whether the verified image `meta` describes is here (as recorded when published)."""
        return self._is_cached(meta)

    def fill(self, meta: ImageMeta, chunks: Iterator[bytes], source: str) -> bool:
        """Publish `meta`'s image from `chunks` (any source, trusted for nothing: verified as a
        download from the image service is). False when it was cached already (the chunks are
        not read); ImageCacheError when the data does not verify (nothing is published)."""
        if not meta.hash_algo or not meta.hash_value:
            raise ImageCacheError(f"Image {meta.id} has no os_hash_value: refusing unverifiable data.")
        with self._locked(self._check_id(meta.id)):
            if self._is_cached(meta):
                return False
            self._fetch(meta, chunks, source)
            return True

    def open_verified(self, image_id: str) -> tuple[Path, dict[str, Any]] | None:
        """The published copy of `image_id` and its record, for serving it to a peer (not a
        copy found bad by `reverify` that instances still use: `suspect`)."""
        image_id = self._check_id(image_id)
        record = self._read_sidecar(image_id)
        path = self._data(image_id)
        ok = record is not None and not record.get("suspect") and path.is_file()
        return (path, record) if ok and record is not None else None

    def reverify(self, image_id: str) -> tuple[bool, bool]:
        """Hash the published copy again (a peer refused it): (good, dropped). A copy that no
        longer matches its record is dropped (unlinked) unless instances use it; then it is
        marked suspect and served to no peer any more."""
        image_id = self._check_id(image_id)
        with self._locked(image_id):
            record = self._read_sidecar(image_id)
            path = self._data(image_id)
            if record is None or not path.is_file():
                return False, False
            digest = hashlib.new(str(record.get("hash_algo")))
            size = 0
            with open(path, "rb") as data:
                while block := data.read(1024 * 1024):
                    digest.update(block)
                    size += len(block)
            if digest.hexdigest() == record.get("hash_value") and size == record.get("size"):
                return True, False
            if self._owners(image_id):
                record["suspect"] = True
                self._write_sidecar(image_id, record)
                return False, False
            path.unlink(missing_ok=True)
            self._sidecar(image_id).unlink(missing_ok=True)
            return False, True

    def pin(self, image_id: str, until: float) -> None:
        """Keep the image from eviction until `until` (epoch seconds), even when unused."""
        image_id = self._check_id(image_id)
        with self._locked(image_id):
            record = self._read_sidecar(image_id)
            if record is None:
                return
            record["pinned_until"] = max(float(record.get("pinned_until") or 0), until)
            self._write_sidecar(image_id, record)

    def _write_sidecar(self, image_id: str, record: dict[str, Any]) -> None:
        tmp = self.root / f".{image_id}.json.tmp"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, self._sidecar(image_id))

    def _fetch(self, meta: ImageMeta, chunks: Iterator[bytes] | None = None, source: str = "origin") -> None:
        """Download (from the image service, or `chunks`), verify, then publish by rename.
        Caller holds the image's lock."""
        try:
            digest = hashlib.new(str(meta.hash_algo))
        except ValueError:
            raise ImageCacheError(f"Image {meta.id}: unknown hash algorithm {meta.hash_algo!r}.") from None
        partial = self.root / f".{meta.id}.{uuid.uuid4().hex}.part"
        started = time.monotonic()
        size = 0
        try:
            with open(partial, "wb") as out:
                for chunk in self.source.chunks(meta.id) if chunks is None else chunks:
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            if meta.size is not None and size != meta.size:
                raise ImageVerificationError(
                    f"Image {meta.id}: downloaded {size} bytes, expected {meta.size}."
                )
            if digest.hexdigest() != meta.hash_value:
                raise ImageVerificationError(
                    f"Image {meta.id} failed verification: {meta.hash_algo} mismatch."
                )
            os.chmod(partial, 0o444)
            os.replace(partial, self._data(meta.id))
        except httpx.HTTPError as exc:
            raise DownloadFailed(f"Image {meta.id}: download failed ({exc}).") from None
        finally:
            partial.unlink(missing_ok=True)
        previous = self._read_sidecar(meta.id) or {}
        record = {
            "id": meta.id,
            "size": size,
            "disk_format": meta.disk_format,
            "hash_algo": meta.hash_algo,
            "hash_value": meta.hash_value,
            "fetched_at": time.time(),
            "fetch_seconds": round(time.monotonic() - started, 3),
            "downloads": int(previous.get("downloads", 0)) + 1,
            "source": source,
        }
        if previous.get("pinned_until"):
            record["pinned_until"] = previous["pinned_until"]
        self._write_sidecar(meta.id, record)

    # -- housekeeping ----------------------------------------------------------------------
    def _owners(self, image_id: str) -> list[str]:
        refs = self._refs(image_id)
        return sorted(p.name for p in refs.iterdir()) if refs.is_dir() else []

    def _last_used(self, image_id: str) -> float:
        stamps = [p.stat().st_mtime for p in (self._refs(image_id), self._data(image_id)) if p.exists()]
        return max(stamps, default=0.0)

    def _cached_ids(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json") if not p.name.startswith("."))

    def evict(self, max_age: float | None = None, now: float | None = None) -> list[str]:
        """Delete images unused for longer than `max_age` (default: the cache's), and orphaned
        partial downloads. Images being downloaded or used are skipped. Returns evicted ids."""
        limit = self.max_age if max_age is None else max_age
        now = time.time() if now is None else now
        evicted: list[str] = []
        candidates = set(self._cached_ids())
        candidates |= {p.name.split(".")[1] for p in self.root.glob(".*.part")}
        for image_id in sorted(candidates):
            with self._locked(image_id, blocking=False) as held:
                if not held:
                    continue  # a download is in progress
                for orphan in self.root.glob(f".{image_id}.*.part"):
                    orphan.unlink(missing_ok=True)
                if self._owners(image_id) or not self._sidecar(image_id).exists():
                    continue
                if float((self._read_sidecar(image_id) or {}).get("pinned_until") or 0) > now:
                    continue  # precached: pinned for the setting precache_pin_seconds
                if now - self._last_used(image_id) < limit:
                    continue
                self._data(image_id).unlink(missing_ok=True)
                self._sidecar(image_id).unlink(missing_ok=True)
                shutil.rmtree(self._refs(image_id), ignore_errors=True)
                evicted.append(image_id)
        return evicted

    def verified_ids(self) -> list[str]:
        """The images held as published (verified) copies a peer may be served: not suspect."""
        return [
            image_id
            for image_id in self._cached_ids()
            if (record := self._read_sidecar(image_id)) is not None
            and not record.get("suspect")
            and self._data(image_id).is_file()
        ]

    def report(self) -> list[dict[str, Any]]:
        """What is cached: one entry per image, with its users and last use."""
        entries = []
        for image_id in self._cached_ids():
            record = self._read_sidecar(image_id)
            if record is None or not self._data(image_id).is_file():
                continue
            owners = self._owners(image_id)
            entries.append(
                {
                    **record,
                    "instances": owners,
                    "in_use": bool(owners),
                    "last_used": self._last_used(image_id),
                }
            )
        return entries


class HttpImageSource:
    """Images from kumo's internal API (/internal/v1/images), with the agent token."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def metadata(self, image_id: str) -> ImageMeta:
        try:
            resp = self.client.get(f"/images/{image_id}")
        except httpx.HTTPError as exc:
            raise ImageCacheError(f"Image {image_id}: image service unreachable ({exc}).") from None
        if resp.status_code == 404:
            raise ImageCacheError(f"Image {image_id} could not be found.")
        if resp.status_code != 200:
            raise ImageCacheError(f"Image {image_id}: image service answered {resp.status_code}.")
        body = resp.json()
        return ImageMeta(
            id=body["id"],
            status=body["status"],
            disk_format=body.get("disk_format"),
            size=body.get("size"),
            hash_algo=body.get("os_hash_algo"),
            hash_value=body.get("os_hash_value"),
            properties=body,  # Glance shows extra properties (kernel_id…) beside the core ones
        )

    def chunks(self, image_id: str) -> Iterator[bytes]:
        with self.client.stream("GET", f"/images/{image_id}/file") as resp:
            if resp.status_code != 200:
                raise DownloadFailed(f"Image {image_id}: download answered {resp.status_code}.")
            yield from resp.iter_bytes(1024 * 1024)
