"""Server bodies exactly as Nova shapes them, per microversion (2.1 … 2.64).

Three shapes share one core (`_core`): GET show / list detail (`detail`), the PUT update response
(`updated`) and the rebuild response (`rebuilt`). Before 2.75 Nova answers PUT and rebuild with the
core only: no key_name, security groups, OS-EXT-* or OS-SRV-USG attributes (rebuild gains key_name
at 2.54 and user_data at 2.57). Fields tied to a microversion appear from it on in every shape:
locked (2.9), description (2.19), tags (2.26), the embedded flavor (2.47), trusted certs (2.63).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from kumo.api.context import RequestContext
from kumo.compute import states
from kumo.compute.microversion import Microversion
from kumo.compute.models import Instance

# Progress is shown in these statuses only, a fault in the others (Nova's view builder).
_PROGRESS_STATUSES = {"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"}
_FAULT_STATUSES = {"ERROR", "DELETED"}


def iso(value: dt.datetime | None) -> str | None:
    """Nova's utils.isotime: second precision and a Z (`created`, `updated`, fault `created`)."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def usec(value: dt.datetime | None) -> str | None:
    """A naive datetime as Nova's JSON encoder writes it: microseconds, no zone (launched_at…)."""
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


def _image(instance: Instance, base: str) -> dict[str, Any] | str:
    # Booted from volume: Nova answers an empty string, not null and not an empty object.
    if not instance.image_ref:
        return ""
    bookmark = {"rel": "bookmark", "href": f"{base}/compute/images/{instance.image_ref}"}
    return {"id": instance.image_ref, "links": [bookmark]}


def _flavor(instance: Instance, base: str, version: Microversion) -> dict[str, Any]:
    flavor = instance.flavor or {}
    if version.before("2.47"):
        if "id" not in flavor:
            return {}  # flavor record lost: Nova shows an empty object
        flavor_id = str(flavor["id"])
        bookmark = {"rel": "bookmark", "href": f"{base}/compute/flavors/{flavor_id}"}
        return {"id": flavor_id, "links": [bookmark]}
    # 2.47: the flavor as it was at boot. Extra specs are readable by the owner and admins (Nova's
    # default policy), so whoever can see the server sees them.
    return {
        "vcpus": int(flavor.get("vcpus", 0)),
        "ram": int(flavor.get("ram", 0)),
        "disk": int(flavor.get("disk", 0)),
        "ephemeral": int(flavor.get("ephemeral") or 0),
        "swap": int(flavor.get("swap") or 0),
        "original_name": str(flavor.get("name", "")),
        "extra_specs": {str(k): str(v) for k, v in (flavor.get("extra_specs") or {}).items()},
    }


def _fault(instance: Instance, ctx: RequestContext) -> dict[str, Any] | None:
    raw = instance.fault
    if not raw:
        return None
    created = raw.get("created")
    when = dt.datetime.fromisoformat(created) if isinstance(created, str) else instance.updated_at
    fault: dict[str, Any] = {
        "code": int(raw.get("code", 500)),
        "created": iso(when),
        "message": str(raw.get("message") or ""),
    }
    # Details (a traceback, for 500s) only when there are some, and for a 500 only to admins.
    details = raw.get("details")
    if details and (ctx.is_admin or fault["code"] != 500):
        fault["details"] = str(details)
    return fault


def _core(instance: Instance, base: str, version: Microversion, ctx: RequestContext) -> dict[str, Any]:
    """What every server body carries: Nova's view with all the optional parts switched off."""
    status = states.status(instance.vm_state, instance.task_state)
    body: dict[str, Any] = {
        "id": instance.uuid,
        "name": instance.name,
        "status": status,
        "tenant_id": instance.project_id or "",
        "user_id": instance.user_id or "",
        "metadata": dict(instance.metadata_ or {}),
        "hostId": host_id(instance),
        "image": _image(instance, base),
        "flavor": _flavor(instance, base, version),
        "created": iso(instance.created_at),
        "updated": iso(instance.updated_at or instance.created_at),
        "addresses": {},
        "accessIPv4": instance.access_ip_v4 or "",
        "accessIPv6": instance.access_ip_v6 or "",
        "links": links(base, "servers", instance.uuid),
        "OS-DCF:diskConfig": "MANUAL",
    }
    if status in _FAULT_STATUSES:
        fault = _fault(instance, ctx)
        if fault is not None:
            body["fault"] = fault
    if status in _PROGRESS_STATUSES:
        body["progress"] = instance.progress or 0
    if version.at_least("2.9"):
        body["locked"] = bool(instance.locked)
    if version.at_least("2.19"):
        body["description"] = instance.description
    if version.at_least("2.26"):
        body["tags"] = list(instance.tags or [])
    if version.at_least("2.63"):
        body["trusted_image_certificates"] = None  # kumo does not verify image signatures
    return body


def detail(
    instance: Instance, base: str, version: Microversion, ctx: RequestContext, host_up: bool | None = None
) -> dict[str, Any]:
    """GET /servers/{id} and each item of GET /servers/detail."""
    body = _core(instance, base, version, ctx)
    body.update(
        {
            "key_name": instance.key_name,
            "config_drive": instance.config_drive or "",
            "OS-EXT-AZ:availability_zone": instance.availability_zone or "",
            "OS-EXT-STS:task_state": instance.task_state,
            "OS-EXT-STS:vm_state": instance.vm_state,
            "OS-EXT-STS:power_state": int(instance.power_state or 0),
            "OS-SRV-USG:launched_at": usec(instance.launched_at),
            "OS-SRV-USG:terminated_at": usec(instance.terminated_at),
            "os-extended-volumes:volumes_attached": [],
            "security_groups": [{"name": "default"}],
        }
    )
    if ctx.is_admin:  # extended server attributes: admin-only by Nova's default policy
        body["OS-EXT-SRV-ATTR:host"] = instance.host
        body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = instance.host
        body["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{instance.id or 0:08x}"
        if version.at_least("2.3"):
            body.update(
                {
                    "OS-EXT-SRV-ATTR:reservation_id": instance.reservation_id,
                    "OS-EXT-SRV-ATTR:launch_index": instance.launch_index or 0,
                    "OS-EXT-SRV-ATTR:hostname": instance.hostname or "",
                    "OS-EXT-SRV-ATTR:kernel_id": "",
                    "OS-EXT-SRV-ATTR:ramdisk_id": "",
                    # Set when the host builds the instance; unknown while it is being scheduled.
                    "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda" if instance.host else None,
                    "OS-EXT-SRV-ATTR:user_data": instance.user_data,
                }
            )
        if version.at_least("2.16"):
            body["host_status"] = _host_status(instance, host_up)
    return body


def updated(instance: Instance, base: str, version: Microversion, ctx: RequestContext) -> dict[str, Any]:
    """The PUT /servers/{id} response (before 2.75: the core view only)."""
    return _core(instance, base, version, ctx)


def rebuilt(
    instance: Instance, base: str, version: Microversion, ctx: RequestContext, admin_pass: str | None
) -> dict[str, Any]:
    """The rebuild action's response: the core view, key_name from 2.54, user_data from 2.57."""
    body = _core(instance, base, version, ctx)
    if version.at_least("2.54"):
        body["key_name"] = instance.key_name
    if version.at_least("2.57"):
        body["user_data"] = instance.user_data
    if admin_pass is not None:
        body["adminPass"] = admin_pass
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


def action_body(
    action: Any, version: Microversion, events: list[Any] | None, ctx: RequestContext
) -> dict[str, Any]:
    """One instance action; `events` None leaves them out (the list call, or hidden by policy).

    Admins see each event's traceback at every version and its host from 2.62; everyone sees the
    event's hostId from 2.62."""
    body: dict[str, Any] = {
        "action": action.action,
        "instance_uuid": action.instance_uuid,
        "message": action.message,
        "project_id": action.project_id or "",
        "request_id": action.request_id,
        "start_time": usec(action.start_time),
        "user_id": action.user_id or "",
    }
    if version.at_least("2.58"):
        body["updated_at"] = usec(action.updated_at or action.start_time)
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
