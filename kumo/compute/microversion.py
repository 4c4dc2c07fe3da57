"""Nova microversions: parse the request's version, compare, and answer with it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from kumo.errors import BadRequest, NotAcceptable, NotFound
from kumo.validation import int_text

MIN_VERSION = (2, 1)
# Advertise only versions whose request and response shapes kumo implements.
MAX_VERSION = (2, 96)

_VERSION_RE = re.compile(r"([1-9][0-9]*)\.([1-9][0-9]*|0)")  # ASCII digits, any number of them


@dataclass(frozen=True, order=True)
class Microversion:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, version: str) -> bool:
        return (self.major, self.minor) >= _split(version)

    def before(self, version: str) -> bool:
        return not self.at_least(version)


@lru_cache(maxsize=256)
def _split(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


def max_version() -> Microversion:
    return Microversion(*MAX_VERSION)


def min_version() -> Microversion:
    return Microversion(*MIN_VERSION)


def parse(headers: dict[str, str]) -> Microversion:
    """From `OpenStack-API-Version: compute X` or `X-OpenStack-Nova-API-Version: X`."""
    raw = None
    new = headers.get("openstack-api-version")
    if new:
        for item in new.split(","):
            parts = item.strip().split()
            if len(parts) == 2 and parts[0].lower() == "compute":
                raw = parts[1]
    if raw is None:
        raw = headers.get("x-openstack-nova-api-version")
    if raw is None:
        return min_version()
    raw = raw.strip()
    if raw.lower() == "latest":
        return max_version()
    match = _VERSION_RE.fullmatch(raw)
    # int_text: a number of thousands of digits reads as one beyond every version (a 406), where
    # int() raised ValueError (a 500)
    major, minor = (int_text(match.group(1)), int_text(match.group(2))) if match else (None, None)
    if major is None or minor is None:
        raise BadRequest(
            f"API Version String {raw} is of invalid format. Must be of format MajorNum.MinorNum."
        )
    version = Microversion(major, minor)
    if not (min_version() <= version <= max_version()):
        raise NotAcceptable(
            f"Version {raw} is not supported by the API. "
            f"Minimum is {min_version()} and maximum is {max_version()}."
        )
    return version


def require(version: Microversion, minimum: str) -> None:
    """A route that exists from `minimum` on: before it, Nova's 404 for an unknown resource."""
    if version.before(minimum):
        raise NotFound("The resource could not be found.")


def removed_at(version: Microversion, maximum: str) -> None:
    """A route Nova removed at `maximum` (os-hosts at 2.43, the image proxy at 2.36): from it on,
    Nova's 404 for an unknown resource."""
    if version.at_least(maximum):
        raise NotFound("The resource could not be found.")
