"""cloud-init's own readers, to feed kumo's metadata to the real client: the `cloudinit`
package if it is importable, else Debian's cloud-init package (`apt-get download`, unpacked
once into a cache directory, never installed). Tests that need it skip clearly without it."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

CACHE = Path(tempfile.gettempdir()) / "kumo-test-cloud-init"


def _unpacked() -> Path | None:
    tree = CACHE / "usr" / "lib" / "python3" / "dist-packages"
    if (tree / "cloudinit").is_dir():
        return tree
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return None
    download = Path(tempfile.mkdtemp(prefix="kumo-ci-deb-"))
    try:
        subprocess.run(["apt-get", "download", "cloud-init"], cwd=download, check=True, capture_output=True)
        deb = next(download.glob("cloud-init_*.deb"))
        staging = Path(tempfile.mkdtemp(prefix="kumo-ci-tree-", dir=CACHE.parent))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True, capture_output=True)
        try:
            staging.rename(CACHE)
        except OSError:  # another test process unpacked it first
            shutil.rmtree(staging, ignore_errors=True)
    except (subprocess.CalledProcessError, StopIteration, OSError):
        return None
    finally:
        shutil.rmtree(download, ignore_errors=True)
    return tree if (tree / "cloudinit").is_dir() else None


def cloudinit(module: str) -> ModuleType:
    """A module of cloud-init (e.g. "cloudinit.sources.helpers.openstack"), or a skip."""
    try:
        return importlib.import_module(module)
    except ImportError:
        pass
    tree = _unpacked()
    if tree is None:
        pytest.skip("cloud-init is neither importable nor obtainable with apt-get download")
    if str(tree) not in sys.path:
        sys.path.append(str(tree))
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.skip(f"cloud-init's {module} does not import here: {exc}")
