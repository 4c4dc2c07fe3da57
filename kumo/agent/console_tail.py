"""Nova's tail of a console log, the one rule every driver's console output follows."""

from __future__ import annotations


def tail_lines(text: str, lines: int | None) -> str:
    """Nova's ComputeManager._tail_log: the log split at newlines and its last `lines` parts
    joined again, so a log ending in a newline has an empty last part that counts as one
    (tempest counts `output.split("\\n")`); "" for 0; the whole log when `lines` is None or
    negative (the API turns length -1 into no length)."""
    if lines is None or lines < 0:
        return text
    if lines == 0:
        return ""
    return "\n".join(text.split("\n")[-lines:])
