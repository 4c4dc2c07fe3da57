"""Where image bytes live: a tiny store interface and its filesystem implementation.

The store hashes while it writes, so the API never holds an image in memory and never reads it
twice. A write goes to a hidden temporary file that is renamed into place only once complete:
a reader sees either nothing or the whole image.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

from kumo.config import private_dir, private_file
from kumo.errors import NotFound

CHUNK_SIZE = 64 * 1024


class StoredData(NamedTuple):
    size: int
    md5: str
    sha512: str


class ImageStore(Protocol):
    def put(self, image_id: str, chunks: Iterable[bytes]) -> StoredData:
        """Store the data, replacing any previous data; all or nothing."""

    def open(self, image_id: str) -> Iterator[bytes]:
        """The stored data as chunks; NotFound when there is none."""

    def delete(self, image_id: str) -> None:
        """Forget the data; a no-op when there is none."""


class FileStore:
    """One file per image, named by the image id, in one directory only its owner may enter
    (0700); each file 0600. Both are made so when the store is created: images an older kumo
    stored 0644 in a 0755 directory are tightened then, not at the next upload."""

    def __init__(self, root: Path, chunk_size: int = CHUNK_SIZE) -> None:
        self.root = private_dir(root)
        self.chunk_size = chunk_size
        for entry in os.scandir(root):
            if entry.is_file(follow_symlinks=False):
                try:
                    private_file(Path(entry.path))
                except FileNotFoundError:  # deleted meanwhile (another API worker)
                    continue

    def _path(self, image_id: str) -> Path:
        # Ids come from the database as UUIDs; refuse anything else rather than trust a path.
        try:
            canonical = str(uuid.UUID(image_id))
        except ValueError:
            raise NotFound(f"No image data for {image_id}.") from None
        return self.root / canonical

    def put(self, image_id: str, chunks: Iterable[bytes]) -> StoredData:
        final = self._path(image_id)
        private_dir(self.root)  # made again if it was removed since the store was created
        partial = self.root / f".{final.name}.{uuid.uuid4().hex}.part"
        md5 = hashlib.md5(usedforsecurity=False)
        sha512 = hashlib.sha512()
        size = 0
        try:
            # Readable by the API's user only (0600) from its creation: images may hold secrets.
            with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                for chunk in chunks:
                    if not chunk:
                        continue
                    out.write(chunk)
                    md5.update(chunk)
                    sha512.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return StoredData(size, md5.hexdigest(), sha512.hexdigest())

    def open(self, image_id: str) -> Iterator[bytes]:
        # Opened now, not on first iteration: a missing file is reported to the caller at once, and
        # a delete racing with the download does not cut it short (the open handle stays valid).
        try:
            handle = open(self._path(image_id), "rb")
        except FileNotFoundError:
            raise NotFound(f"No image data for {image_id}.") from None
        return self._chunks(handle)

    def _chunks(self, handle: BinaryIO) -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(self.chunk_size):
                yield chunk

    def delete(self, image_id: str) -> None:
        self._path(image_id).unlink(missing_ok=True)


@cache
def file_store(root: Path) -> FileStore:
    """The process's one store of `root`: created (and its modes tightened) once, when the API
    starts (`kumo.app`), not per request."""
    return FileStore(root)
