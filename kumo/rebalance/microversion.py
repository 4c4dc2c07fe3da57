"""Watcher API microversions: `OpenStack-API-Version: infra-optim 1.N` (or `latest`). No header
means the minimum, as in Watcher. A version above ours is answered 406 with the supported range
in OpenStack-API-{Minimum,Maximum}-Version (python-watcherclient then retries with the highest);
every answer carries those two headers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from kumo.errors import NotAcceptable
from kumo.validation import int_text

SERVICE = "infra-optim"
MIN_VERSION = (1, 0)
# 1.5: an action's state may be set to SKIPPED (PATCH /v1/actions/{id}) and shows status_message.
MAX_VERSION = (1, 5)
HEADER = "OpenStack-API-Version"
MIN_HEADER = "OpenStack-API-Minimum-Version"
MAX_HEADER = "OpenStack-API-Maximum-Version"
ACTION_UPDATE = (1, 5)
_VERSION = re.compile(r"1\.([0-9]+)")


def text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def parse(headers: Mapping[str, str]) -> tuple[int, int]:
    """`headers` with lower-case names."""
    raw = None
    for part in headers.get(HEADER.lower(), "").split(","):
        service, _, value = part.strip().partition(" ")
        if service.lower() == SERVICE:
            raw = value.strip()
    if raw is None:
        return MIN_VERSION
    if raw.lower() == "latest":
        return MAX_VERSION
    match = _VERSION.fullmatch(raw)
    minor = int_text(match.group(1)) if match else None
    if minor is None:
        raise NotAcceptable(f"Invalid value for {HEADER} header: {raw}")
    asked = (1, minor)
    if not MIN_VERSION <= asked <= MAX_VERSION:
        raise NotAcceptable(
            f"Version {raw} was requested but the minor version is not supported by this service. "
            f"The supported version range is: [{text(MIN_VERSION)}, {text(MAX_VERSION)}]."
        )
    return asked


def headers(version: tuple[int, int] | None) -> dict[str, str]:
    out = {MIN_HEADER: text(MIN_VERSION), MAX_HEADER: text(MAX_VERSION)}
    if version is not None:
        out[HEADER] = f"{SERVICE} {text(version)}"
        out["Vary"] = HEADER
    return out
