"""Server bodies exactly as Nova shapes them, per microversion (2.1 … 2.64)."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from kumo.api.context import RequestContext
from kumo.compute import states
from kumo.compute.microversion import Microversion
from kumo.compute.models import Instance

# Progress is shown in these states only (nova/api/openstack/compute/views/servers.py).
_PROGRESS_STATUSES = {"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"}


def iso(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def usec(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


def _hash_host(project_id: str, host: str | None) -> str:
    """Nova's hostId: stable per project and host, revealing neither."""
    return hashlib.sha224((project_id + host).encode()).hexdigest() if host else ""


def host_id(instance: Instance) -> str:
    return _hash_host(instance.project_id, instance.host)


def links(base: str, kind: str, ident: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{base}/compute/v2.1/{kind}/{ident}"},
        {"rel": "bookmark", "href": f"{base}/compute/{kind}/{ident}"},
    ]


def brief(instance: Instance, base: str) -> dict[str, Any]:
    return {"id": instance.uuid, "name": instance.name, "links": links(base, "servers", instance.uuid)}


def _flavor(instance: Instance, base: str, version: Microversion) -> dict[str, Any]:
    flavor = instance.flavor
    if version.before("2.47"):
        return {"id": flavor["id"], "links": [{"rel": "bookmark", "href": f"{base}/compute/flavors/{flavor['id']}"}]}
    return {
        "vcpus": flavor["vcpus"],
        "ram": flavor["ram"],
        "disk": flavor["disk"],
        "ephemeral": flavor.get("ephemeral", 0),
        "swap": flavor.get("swap", 0),
        "original_name": flavor["name"],
        "extra_specs": dict(flavor.get("extra_specs") or {}),
    }


def detail(
    instance: Instance, base: str, version: Microversion, ctx: RequestContext, host_up: bool | None = None
) -> dict[str, Any]:
    status = states.status(instance.vm_state, instance.task_state)
    body: dict[str, Any] = {
        "id": instance.uuid,
        "name": instance.name,
        "status": status,
        "tenant_id": instance.project_id,
        "user_id": instance.user_id,
        "metadata": dict(instance.metadata_ or {}),
        "hostId": host_id(instance),
        "image": {"id": instance.image_ref, "links": [
            {"rel": "bookmark", "href": f"{base}/compute/images/{instance.image_ref}"}]} if instance.image_ref else "",
        "flavor": _flavor(instance, base, version),
        "created": iso(instance.created_at),
        "updated": iso(instance.updated_at),
        "addresses": {},
        "accessIPv4": instance.access_ip_v4,
        "accessIPv6": instance.access_ip_v6,
        "links": links(base, "servers", instance.uuid),
        "OS-DCF:diskConfig": "MANUAL",
        "key_name": instance.key_name,
        "config_drive": instance.config_drive,
        "OS-EXT-AZ:availability_zone": instance.availability_zone or "",
        "OS-EXT-STS:task_state": instance.task_state,
        "OS-EXT-STS:vm_state": instance.vm_state,
        "OS-EXT-STS:power_state": instance.power_state,
        "OS-SRV-USG:launched_at": usec(instance.launched_at),
        "OS-SRV-USG:terminated_at": usec(instance.terminated_at),
        "os-extended-volumes:volumes_attached": [],
        "security_groups": [{"name": "default"}],
    }
    if status in _PROGRESS_STATUSES:
        body["progress"] = instance.progress
    if ctx.is_admin:
        body["OS-EXT-SRV-ATTR:host"] = instance.host
        body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = instance.host
        body["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{instance.id:08x}"
        if version.at_least("2.3"):
            body.update({
                "OS-EXT-SRV-ATTR:reservation_id": instance.reservation_id,
                "OS-EXT-SRV-ATTR:launch_index": instance.launch_index,
                "OS-EXT-SRV-ATTR:hostname": instance.hostname,
                "OS-EXT-SRV-ATTR:kernel_id": "",
                "OS-EXT-SRV-ATTR:ramdisk_id": "",
                "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                "OS-EXT-SRV-ATTR:user_data": instance.user_data,
            })
    if instance.fault and instance.vm_state in (states.VmState.ERROR, states.VmState.DELETED):
        fault = {"code": instance.fault["code"], "created": iso(dt.datetime.fromisoformat(instance.fault["created"])),
                 "message": instance.fault["message"]}
        if ctx.is_admin or instance.fault["code"] != 500:
            fault["details"] = instance.fault.get("details", "")
        body["fault"] = fault
    if version.at_least("2.9"):
        body["locked"] = instance.locked
    if version.at_least("2.16") and ctx.is_admin:
        body["host_status"] = _host_status(instance, host_up)
    if version.at_least("2.19"):
        body["description"] = instance.description
    if version.at_least("2.26"):
        body["tags"] = list(instance.tags or [])
    if version.at_least("2.63"):
        body["trusted_image_certificates"] = None
    return body


def _host_status(instance: Instance, host_up: bool | None) -> str:
    if not instance.host:
        return ""
    if host_up is None:
        return "UNKNOWN"
    return "UP" if host_up else "DOWN"


def created(instance: Instance, base: str, admin_pass: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": instance.uuid,
        "links": links(base, "servers", instance.uuid),
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": [{"name": "default"}],
    }
    if admin_pass is not None:
        body["adminPass"] = admin_pass
    return body


def action_body(action: Any, version: Microversion, events: list[Any] | None, ctx: RequestContext) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action": action.action,
        "instance_uuid": action.instance_uuid,
        "message": action.message,
        "project_id": action.project_id,
        "request_id": action.request_id,
        "start_time": usec(action.start_time),
        "user_id": action.user_id,
    }
    if version.at_least("2.58"):
        body["updated_at"] = usec(action.updated_at)
    if events is not None:
        out = []
        for ev in events:
            item: dict[str, Any] = {
                "event": ev.event,
                "start_time": usec(ev.start_time),
                "finish_time": usec(ev.finish_time),
                "result": ev.result,
            }
            if ctx.is_admin:
                item["traceback"] = ev.traceback
            if version.at_least("2.62"):
                item["hostId"] = _hash_host(action.project_id or "", ev.host)
                if ctx.is_admin:
                    item["host"] = ev.host or ""
            out.append(item)
        body["events"] = out
    return body
