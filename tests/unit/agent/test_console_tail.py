"""Nova's console tail rule (ComputeManager._tail_log), shared by the fake and libvirt drivers."""

from __future__ import annotations

import pytest

from kumo.agent.console_tail import tail_lines
from kumo.agent.drivers import fake
from kumo.agent.libvirt import console
from kumo.baremetal import conductor

LOG = "a\nb\nc\n"


@pytest.mark.parametrize(
    ("text", "lines", "expected"),
    [
        (LOG, None, LOG),  # no length: all of it
        (LOG, -1, LOG),  # the API's -1: all of it
        (LOG, -5, LOG),
        (LOG, 0, ""),
        (LOG, 1, ""),  # the empty part after the last newline is the last "line"
        (LOG, 2, "c\n"),
        (LOG, 3, "b\nc\n"),
        (LOG, 4, LOG),
        (LOG, 100, LOG),
        ("a\nb\nc", 1, "c"),  # no trailing newline
        ("a\nb\nc", 2, "b\nc"),
        ("", 3, ""),
        ("", None, ""),
        ("one line", 1, "one line"),
        ("\n\n", 2, "\n"),
    ],
)
def test_tail_lines_is_novas_tail_log(text: str, lines: int | None, expected: str) -> None:
    assert tail_lines(text, lines) == expected
    if lines is not None and lines > 0:  # tempest's count: output.split("\n")
        assert len(tail_lines(text, lines).split("\n")) == min(lines, len(text.split("\n")))


def test_every_driver_uses_it() -> None:
    assert fake.tail_lines is tail_lines and console.tail_lines is tail_lines
    assert conductor.tail_lines is tail_lines  # a baremetal node's console too
