"""Quota-set, quota-class-set and /limits bodies per microversion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kumo.compute.microversion import Microversion
from kumo.compute.quotas import Detail, class_resources, visible_resources


def quota_set(values: Mapping[str, int], mv: Microversion, project_id: str | None) -> dict[str, Any]:
    """`project_id` None for the update answer, which Nova sends without an id."""
    body: dict[str, Any] = {} if project_id is None else {"id": project_id}
    body.update({r: values[r] for r in visible_resources(mv)})
    return {"quota_set": body}


def quota_set_detail(values: Mapping[str, Detail], mv: Microversion, project_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": project_id}
    for resource in visible_resources(mv):
        d = values[resource]
        body[resource] = {"in_use": d.in_use, "limit": d.limit, "reserved": d.reserved}
    return {"quota_set": body}


def quota_class_set(values: Mapping[str, int], mv: Microversion, class_name: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {} if class_name is None else {"id": class_name}
    body.update({r: values[r] for r in class_resources(mv)})
    return {"quota_class_set": body}


# quota resource -> the absolute limit names it feeds
_LIMIT_NAMES: dict[str, tuple[str, ...]] = {
    "ram": ("maxTotalRAMSize",),
    "instances": ("maxTotalInstances",),
    "cores": ("maxTotalCores",),
    "key_pairs": ("maxTotalKeypairs",),
    "floating_ips": ("maxTotalFloatingIps",),
    "metadata_items": ("maxServerMeta", "maxImageMeta"),
    "injected_files": ("maxPersonality",),
    "injected_file_content_bytes": ("maxPersonalitySize",),
    "security_groups": ("maxSecurityGroups",),
    "security_group_rules": ("maxSecurityGroupRules",),
    "server_groups": ("maxServerGroups",),
    "server_group_members": ("maxServerGroupMembers",),
}
_USED_NAMES = {
    "totalRAMUsed": "ram",
    "totalCoresUsed": "cores",
    "totalInstancesUsed": "instances",
    "totalFloatingIpsUsed": "floating_ips",
    "totalSecurityGroupsUsed": "security_groups",
    "totalServerGroupsUsed": "server_groups",
}


def limits(values: Mapping[str, int], used: Mapping[str, int], mv: Microversion) -> dict[str, Any]:
    shown = set(visible_resources(mv))
    absolute: dict[str, int] = {}
    for resource, names in _LIMIT_NAMES.items():
        if resource not in shown:
            continue
        for name in names:
            if name == "maxImageMeta" and mv.at_least("2.39"):
                continue  # the image-metadata proxy went away
            absolute[name] = values[resource]
    for name, resource in _USED_NAMES.items():
        if resource in shown:
            absolute[name] = used[resource]
    return {"limits": {"rate": [], "absolute": absolute}}
