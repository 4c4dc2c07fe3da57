"""Ironic API microversions: `X-OpenStack-Ironic-API-Version: 1.N` (or `latest`, or
`OpenStack-API-Version: baremetal 1.N`). No header means the minimum, as in Ironic.

python-ironicclient (the `openstack baremetal` plugin) first sends the highest version it knows;
a version above ours is answered 406 with the supported range in
`X-OpenStack-Ironic-API-{Minimum,Maximum}-Version`, and the client retries with the lower of the
two maxima. Every response, errors included, carries those two headers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from kumo.errors import NotAcceptable
from kumo.validation import int_text

MIN_VERSION = (1, 1)
# 1.65: node lessee. Fields and behaviours of later versions are not implemented, so not advertised.
MAX_VERSION = (1, 65)
HEADER = "X-OpenStack-Ironic-API-Version"
MIN_HEADER = "X-OpenStack-Ironic-API-Minimum-Version"
MAX_HEADER = "X-OpenStack-Ironic-API-Maximum-Version"
_VERSION = re.compile(r"1\.([0-9]+)")  # ASCII digits, any number of them

# Versions at which behaviours and node fields appear (Ironic's API history).
ENROLL_STATE = (1, 11)  # new nodes start in enroll (before: available)
ADOPT = (1, 17)
NODE_FIELDS_SINCE: dict[str, tuple[int, int]] = {
    "clean_step": (1, 7),
    "raid_config": (1, 12),
    "target_raid_config": (1, 12),
    "resource_class": (1, 21),
    "network_interface": (1, 20),
    "boot_interface": (1, 31),
    "console_interface": (1, 31),
    "deploy_interface": (1, 31),
    "inspect_interface": (1, 31),
    "management_interface": (1, 31),
    "power_interface": (1, 31),
    "raid_interface": (1, 31),
    "vendor_interface": (1, 31),
    "storage_interface": (1, 33),
    "traits": (1, 37),
    "rescue_interface": (1, 38),
    "bios_interface": (1, 40),
    "fault": (1, 42),
    "deploy_step": (1, 44),
    "conductor_group": (1, 46),
    "automated_clean": (1, 47),
    "protected": (1, 48),
    "protected_reason": (1, 48),
    "conductor": (1, 49),
    "owner": (1, 50),
    "description": (1, 51),
    "allocation_uuid": (1, 52),
    "retired": (1, 61),
    "retired_reason": (1, 61),
    "lessee": (1, 65),
}
# Port fields (and body keys) by the version that brought them.
PORT_FIELDS_SINCE: dict[str, tuple[int, int]] = {
    "internal_info": (1, 18),
    "pxe_enabled": (1, 19),
    "local_link_connection": (1, 19),
    "portgroup_uuid": (1, 24),
    "physical_network": (1, 34),
    "is_smartnic": (1, 53),
}
# Every field a port shows (at the latest version), in Ironic's order.
PORT_FIELDS = (
    "uuid",
    "address",
    "node_uuid",
    "extra",
    "internal_info",
    "local_link_connection",
    "pxe_enabled",
    "portgroup_uuid",
    "physical_network",
    "is_smartnic",
    "created_at",
    "updated_at",
    "links",
)
FIELDS_PARAM = (1, 8)  # ?fields= on lists and shows
PORT_DETAIL_PARAM = (1, 43)  # GET /v1/ports?detail=True


def text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


@dataclass(frozen=True)
class Version:
    value: tuple[int, int]

    def at_least(self, version: tuple[int, int]) -> bool:
        return self.value >= version

    def __str__(self) -> str:
        return text(self.value)


def parse(headers: Mapping[str, str]) -> Version:
    """`headers` with lower-case names."""
    raw = headers.get(HEADER.lower())
    if raw is None:
        for part in headers.get("openstack-api-version", "").split(","):
            service, _, value = part.strip().partition(" ")
            if service.lower() == "baremetal":
                raw = value.strip()
    if raw is None:
        return Version(MIN_VERSION)
    raw = raw.strip()
    if raw.lower() == "latest":
        return Version(MAX_VERSION)
    match = _VERSION.fullmatch(raw)
    # int_text: thousands of digits read as a version beyond every one, not a ValueError (a 500)
    minor = int_text(match.group(1)) if match else None
    if minor is None:
        raise NotAcceptable(f"Invalid value for {HEADER} header: {raw}")
    asked = (1, minor)
    if not MIN_VERSION <= asked <= MAX_VERSION:
        raise NotAcceptable(
            f"Version {raw} was requested but the minor version is not supported by this service. "
            f"The supported version range is: [{text(MIN_VERSION)}, {text(MAX_VERSION)}]."
        )
    return Version(asked)


def headers(version: Version | None) -> dict[str, str]:
    out = {MIN_HEADER: text(MIN_VERSION), MAX_HEADER: text(MAX_VERSION)}
    if version is not None:
        out[HEADER] = str(version)
        out["OpenStack-API-Version"] = f"baremetal {version}"
        out["Vary"] = f"{HEADER}, OpenStack-API-Version"
    return out
