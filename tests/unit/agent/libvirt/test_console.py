"""Tailing a serial console log."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumo.agent.libvirt.console import tail


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "console.log"
    path.write_bytes(b"\x1b[0mbooting\r\nline 2\r\n\xff bad byte\r\nKUMO-BOOT-OK web\r\n")
    return path


@pytest.mark.parametrize(
    "lines, expected",
    [
        (None, "[0mbooting\nline 2\n\ufffd bad byte\nKUMO-BOOT-OK web\n"),
        (-1, "[0mbooting\nline 2\n\ufffd bad byte\nKUMO-BOOT-OK web\n"),
        # Nova's rule (console_tail.tail_lines): the empty part after the last newline counts
        (1, ""),
        (2, "KUMO-BOOT-OK web\n"),
        (3, "\ufffd bad byte\nKUMO-BOOT-OK web\n"),
        (0, ""),
        (100, "[0mbooting\nline 2\n\ufffd bad byte\nKUMO-BOOT-OK web\n"),
    ],
)
def test_tail_lines(log: Path, lines: int | None, expected: str) -> None:
    assert tail(log, lines) == expected


def test_tail_reads_only_the_end_of_a_big_log(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"old\n" * 100_000 + b"new\n")
    out = tail(path, max_bytes=1024)
    assert len(out) <= 1024 and out.endswith("new\n")


def test_no_log_yet_is_empty(tmp_path: Path) -> None:
    assert tail(tmp_path / "missing.log") == ""
