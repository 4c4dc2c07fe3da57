"""`kumo up` on a machine where libvirt works: its first hypervisor is a real one and the demo
server is a real QEMU guest whose boot marker `kumo up` reads back through the API."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.cli.test_kumo_up import run_up
from tests.integration.libvirt.conftest import MARKER, GuestImage


def test_up_boots_a_real_guest_when_libvirt_is_usable(tmp_path: Path, test_image: GuestImage) -> None:
    image_dir = test_image.kernel.parent
    out = ""
    try:
        out = run_up(tmp_path / "state", "--hosts", "2", "--image-dir", str(image_dir), timeout=600)
        assert "compute-1: libvirt/QEMU: real guests" in out
        assert re.search(r"demo-server \S+ is ACTIVE", out), out
        assert f"{MARKER} demo-server" in out  # read through os-getConsoleOutput
        assert "--flavor r1.tiny --image kumo-test-image" in out
    finally:
        # The guest outlives `kumo up --exit` (as a guest should): remove it.
        found = re.search(r"demo-server (\S+) is", out)
        if found:
            for verb in ("destroy", "undefine"):
                subprocess.run(["virsh", "-c", "qemu:///system", verb, found.group(1)], capture_output=True)
