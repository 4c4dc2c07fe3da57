"""os-simple-tenant-usage bodies: a project's totals over the period and, when detailed (always
for one project), each server's usage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kumo.compute.usage import ServerUsage, TenantUsage, UsageReport
from kumo.compute.views import isotime, page_links


def server_usage(usage: ServerUsage) -> dict[str, Any]:
    return {
        "instance_id": usage.instance_id,
        "name": usage.name,
        "tenant_id": usage.tenant_id,
        "flavor": usage.flavor,
        "hours": usage.hours,
        "memory_mb": usage.memory_mb,
        "local_gb": usage.local_gb,
        "vcpus": usage.vcpus,
        "started_at": isotime(usage.started_at),
        "ended_at": isotime(usage.ended_at),
        "state": usage.state,
        "uptime": usage.uptime,
    }


def tenant_usage(tenant: TenantUsage, detailed: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenant_id": tenant.tenant_id,
        "total_local_gb_usage": tenant.total_local_gb_usage,
        "total_vcpus_usage": tenant.total_vcpus_usage,
        "total_memory_mb_usage": tenant.total_memory_mb_usage,
        "total_hours": tenant.total_hours,
        "start": isotime(tenant.start),
        "stop": isotime(tenant.stop),
    }
    if detailed:
        body["server_usages"] = [server_usage(s) for s in tenant.servers]
    return body


def _links(
    report: UsageReport, base_url: str, collection: str, params: Mapping[str, str], limit: int | None
) -> list[dict[str, str]] | None:
    return page_links(base_url, collection, params, report.servers, limit, lambda s: s.instance_id)


def usage_list(
    report: UsageReport, detailed: bool, base_url: str, params: Mapping[str, str], limit: int | None
) -> dict[str, Any]:
    """`limit`: the page size of a 2.40 request (None before 2.40: no links)."""
    body: dict[str, Any] = {"tenant_usages": [tenant_usage(t, detailed) for t in report.tenants]}
    links = _links(report, base_url, "os-simple-tenant-usage", params, limit)
    if links:
        body["tenant_usages_links"] = links
    return body


def usage_show(
    report: UsageReport, project_id: str, base_url: str, params: Mapping[str, str], limit: int | None
) -> dict[str, Any]:
    """A project without a server in the period: an empty object, as Nova answers."""
    usage = tenant_usage(report.tenants[0], detailed=True) if report.tenants else {}
    body: dict[str, Any] = {"tenant_usage": usage}
    links = _links(report, base_url, f"os-simple-tenant-usage/{project_id}", params, limit)
    if links:
        body["tenant_usage_links"] = links
    return body
