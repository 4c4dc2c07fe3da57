"""Which compute hosts may be baremetal nodes, told by name and hypervisor type alone.

A node's compute host is named by the node's uuid and reports BAREMETAL_HYPERVISOR_TYPE. The
rule lives here, below both, so compute can treat nodes apart (no local delete, no evacuation,
no move) without importing kumo.baremetal, which builds on compute."""

from __future__ import annotations

import re

BAREMETAL_HYPERVISOR_TYPE = "ironic"

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def may_be_node(host: str) -> bool:
    """Whether a compute host name can be a baremetal node's: a node's host is its uuid, and a
    task for it moves the node (the baremetal on-enqueued hook)."""
    return is_uuid(host)
