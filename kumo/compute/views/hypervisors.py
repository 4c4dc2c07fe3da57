"""os-hypervisors bodies: integer ids before 2.53; `servers` whenever asked for from 2.75 (before,
left out when empty); from 2.88 no usage fields nor cpu_info, and `uptime` in the detail and
show bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from kumo.compute.hosts import Hypervisor, Statistics, compute_service_id, uptime_text
from kumo.compute.microversion import Microversion
from kumo.compute.views import page_links

UUID_VERSION = "2.53"
CPU_INFO_OBJECT_VERSION = "2.28"
ALWAYS_SERVERS_VERSION = "2.75"
NO_USAGE_VERSION = "2.88"


def hypervisor_id(h: Hypervisor, mv: Microversion) -> str | int:
    return h.host.uuid if mv.at_least(UUID_VERSION) else h.host.id


def summary(h: Hypervisor, mv: Microversion) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": hypervisor_id(h, mv),
        "hypervisor_hostname": h.host.name,
        "state": "up" if h.up else "down",
        "status": "disabled" if h.host.disabled else "enabled",
    }
    # Before 2.75 Nova leaves the key out when the host has no servers.
    if h.servers or (h.servers is not None and mv.at_least(ALWAYS_SERVERS_VERSION)):
        body["servers"] = [{"name": name, "uuid": uuid} for name, uuid in h.servers]
    return body


def detail(h: Hypervisor, mv: Microversion) -> dict[str, Any]:
    host = h.host
    body = summary(h, mv)
    service = {
        "id": host.service_uuid if mv.at_least(UUID_VERSION) else compute_service_id(host),
        "host": host.name,
        "disabled_reason": host.disabled_reason,
    }
    if mv.at_least(NO_USAGE_VERSION):
        body.update(
            {
                "hypervisor_type": host.hypervisor_type,
                "hypervisor_version": host.hypervisor_version,
                "host_ip": host.host_ip,
                "service": service,
                "uptime": uptime_text(h),  # null while the host's service is down
            }
        )
        return body
    body.update(
        {
            "vcpus": host.vcpus,
            "memory_mb": host.memory_mb,
            "local_gb": host.disk_gb,
            "vcpus_used": h.vcpus_used,
            "memory_mb_used": h.memory_mb_used,
            "local_gb_used": h.local_gb_used,
            "hypervisor_type": host.hypervisor_type,
            "hypervisor_version": host.hypervisor_version,
            "free_ram_mb": h.free_ram_mb,
            "free_disk_gb": h.free_disk_gb,
            "current_workload": 0,
            "running_vms": h.running_vms,
            "disk_available_least": h.free_disk_gb,
            "host_ip": host.host_ip,
            "service": service,
        }
    )
    if mv.at_least(CPU_INFO_OBJECT_VERSION):
        body["cpu_info"] = dict(host.cpu_info or {})
    else:
        body["cpu_info"] = json.dumps(host.cpu_info or {})
    return body


def index(
    hypervisors: Sequence[Hypervisor],
    mv: Microversion,
    *,
    detailed: bool,
    base_url: str,
    limit: int | None,
    query: Mapping[str, str],
) -> dict[str, Any]:
    build = detail if detailed else summary
    body: dict[str, Any] = {"hypervisors": [build(h, mv) for h in hypervisors]}
    collection = "os-hypervisors/detail" if detailed else "os-hypervisors"
    links = page_links(base_url, collection, query, list(hypervisors), limit, lambda h: hypervisor_id(h, mv))
    if links:
        body["hypervisors_links"] = links
    return body


def show(h: Hypervisor, mv: Microversion) -> dict[str, Any]:
    return {"hypervisor": detail(h, mv)}


def uptime(h: Hypervisor, text: str, mv: Microversion) -> dict[str, Any]:
    body = summary(h, mv)
    body["uptime"] = text
    return {"hypervisor": body}


def statistics(stats: Statistics) -> dict[str, Any]:
    return {"hypervisor_statistics": asdict(stats)}
