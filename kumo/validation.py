"""The integer rules every service shares (compute, placement, image, baremetal, stock).

A bottom module, like kumo/errors.py: it imports nothing of kumo's, so any layer may use it.

`MAX_INT` is the bound of the 32-bit INTEGER columns kumo stores counts, sizes and amounts in.
`int_text` is the one parser of integer text from a request (query string, path, or a body
field that may be a string): an optional "-" and ASCII digits, nothing else. Python's int() is
not used on request text directly because it also takes " 7", "+7", "1_0" and "٣" (non-ASCII
digits), and raises ValueError for "--5" and for more than 4,300 digits."""

from __future__ import annotations

import re

MAX_INT = 2**31 - 1
MIN_INT = -(2**31)
# What text of more than 19 significant digits reads as: beyond every bound kumo checks (the
# largest is BIGINT's, 2**63 - 1), so a range check refuses it and a limit is clamped, as Nova
# and Placement clamp a huge limit; int() never sees the digits.
BEYOND = 10**19

_INTEGER = re.compile(r"(-?)0*([0-9]+)")


def int_text(text: object, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """The integer `text` spells, when it is integer text within [minimum, maximum] (None: that
    side unbounded); None when it is not. Text of more than 19 digits reads as ±BEYOND."""
    match = _INTEGER.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    sign, digits = match.groups()
    number = BEYOND if len(digits) > 19 else int(digits)
    number = -number if sign else number
    if minimum is not None and number < minimum:
        return None
    if maximum is not None and number > maximum:
        return None
    return number
