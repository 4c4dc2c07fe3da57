"""Reading an instance's serial console log: its tail, never the whole file."""

from __future__ import annotations

import os
import re
from pathlib import Path

# As much as Nova's libvirt driver returns: enough for a boot, bounded for the API.
MAX_CONSOLE_BYTES = 100 * 1024
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")


def tail(path: Path, lines: int | None = None, max_bytes: int = MAX_CONSOLE_BYTES) -> str:
    """The last `lines` lines (all when None or negative) of the last `max_bytes` of the log,
    as text without control characters other than tab and newline. Empty when there is no log."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - max_bytes))
            data = handle.read(max_bytes)
    except FileNotFoundError:
        return ""
    text = _CONTROL.sub("", data.decode("utf-8", errors="replace").replace("\r\n", "\n"))
    if lines is None or lines < 0:
        return text
    if lines == 0:
        return ""
    parts = text.split("\n")
    if parts and parts[-1] == "":  # a trailing newline ends the last line, it is not one more
        return "\n".join(parts[-lines - 1 :])
    return "\n".join(parts[-lines:])
