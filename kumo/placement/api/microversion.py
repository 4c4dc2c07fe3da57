"""Placement microversions: `OpenStack-API-Version: placement 1.x` (1.0 when absent)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kumo.errors import BadRequest, NotFound
from kumo.placement.api.exceptions import VersionNotAcceptable
from kumo.validation import int_text

MIN_VERSION = (1, 0)
# 1.30 reshaper, 1.31 in_tree on candidates, 1.32 forbidden aggregates, 1.33 named group
# suffixes, 1.34 mappings, 1.35 root_required. Not 1.36 (same_subtree, resourceless groups).
MAX_VERSION = (1, 35)

_VERSION_RE = re.compile(r"([1-9][0-9]*)\.(0|[1-9][0-9]*)")  # ASCII digits, any number of them


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, minor: int) -> bool:
        return (self.major, self.minor) >= (1, minor)

    def require(self, minor: int) -> None:
        """Placement answers 404 for a handler that does not exist at the requested version."""
        if not self.at_least(minor):
            raise NotFound("The resource could not be found.")


def max_version() -> Version:
    return Version(*MAX_VERSION)


def min_version() -> Version:
    return Version(*MIN_VERSION)


def parse(header: str | None) -> Version:
    raw = None
    for item in (header or "").split(","):
        parts = item.strip().split()
        if len(parts) == 2 and parts[0].lower() == "placement":
            raw = parts[1]
    if raw is None:
        return min_version()
    if raw.lower() == "latest":
        return max_version()
    match = _VERSION_RE.fullmatch(raw)
    # int_text: thousands of digits read as a version beyond every one (a 406), not a ValueError
    major, minor = (int_text(match.group(1)), int_text(match.group(2))) if match else (None, None)
    if major is None or minor is None:
        raise BadRequest(f"invalid version string: {raw}")
    version = Version(major, minor)
    if not min_version() <= version <= max_version():
        raise VersionNotAcceptable(
            f"Unacceptable version header: {raw}", str(min_version()), str(max_version())
        )
    return version
