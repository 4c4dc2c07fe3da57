"""Instance disks with qemu-img: a copy-on-write qcow2 overlay over a cached base image, grown
to the flavor's root disk size. One qemu-img run per disk operation (spawn, rebuild), never per
sync."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kumo.agent.drivers.base import DriverError

GiB = 1024**3
BASE_FORMATS = ("raw", "qcow2")


@dataclass(frozen=True)
class DiskInfo:
    format: str
    virtual_size: int
    backing_file: str | None


def _qemu_img(*args: str, timeout: float = 120) -> str:
    try:
        done = subprocess.run(
            ["qemu-img", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise DriverError("qemu-img is not installed on this host (scripts/install-libvirt).") from None
    if done.returncode != 0:
        raise DriverError(f"qemu-img {args[0]} failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


def info(path: Path, fmt: str) -> DiskInfo:
    """What the file is, read as `fmt` (never probed: a raw image must not pass for qcow2)."""
    data = json.loads(_qemu_img("info", "--output=json", "-f", fmt, str(path)))
    return DiskInfo(str(data["format"]), int(data["virtual-size"]), data.get("backing-filename"))


def create_overlay(base: Path, base_format: str, dest: Path, flavor_disk_gb: int) -> DiskInfo:
    """A qcow2 overlay of `base` at `dest`, as large as the flavor's root disk (the image's own
    size when the flavor says 0). Refuses a base that is bigger than the flavor allows or that
    itself points at another file."""
    if base_format not in BASE_FORMATS:
        raise DriverError(f"Image disk format {base_format!r} cannot back a root disk; use raw or qcow2.")
    base_info = info(base, base_format)
    if base_info.backing_file:
        raise DriverError("Image has a backing file of its own; refusing to use it as a base.")
    size = base_info.virtual_size
    if flavor_disk_gb:
        wanted = flavor_disk_gb * GiB
        if wanted < size:
            raise DriverError(
                f"Flavor's disk is too small for requested image. Flavor disk is {wanted} bytes, "
                f"image is {size} bytes."
            )
        size = wanted
    dest.unlink(missing_ok=True)
    _qemu_img("create", "-q", "-f", "qcow2", "-b", str(base), "-F", base_format, str(dest), str(size))
    return DiskInfo("qcow2", size, str(base))


def grow(path: Path, flavor_disk_gb: int) -> None:
    """Grow the qcow2 disk at `path` to the flavor's root disk (never shrinks; 0: as it is)."""
    if not flavor_disk_gb:
        return
    wanted = flavor_disk_gb * GiB
    if info(path, "qcow2").virtual_size < wanted:
        _qemu_img("resize", "-q", "-f", "qcow2", str(path), str(wanted))


def flatten(disk: Path, dest: Path, timeout: float = 3600) -> None:
    """A standalone qcow2 copy of a root disk (its base image merged in) at `dest`, read with
    shared locks (-U) so that a paused guest's qemu may keep the disk open."""
    dest.unlink(missing_ok=True)
    _qemu_img("convert", "-U", "-f", "qcow2", "-O", "qcow2", str(disk), str(dest), timeout=timeout)
