"""Ironic's JSON shapes for nodes, ports and version documents. Fields newer than the request's
microversion are left out, as Ironic does."""

from __future__ import annotations

from typing import Any

from kumo.baremetal import hosts
from kumo.baremetal.drivers import DRIVERS
from kumo.baremetal.microversion import (
    MAX_VERSION,
    MIN_VERSION,
    NODE_FIELDS_SINCE,
    PORT_FIELDS_SINCE,
    Version,
    text,
)
from kumo.baremetal.models import Conductor, Node, NodePort

LIST_FIELDS = ("uuid", "name", "instance_uuid", "power_state", "provision_state", "maintenance")
_SECRET = "******"


def _iso(value: Any) -> str | None:
    return value.isoformat() + "+00:00" if value is not None else None


def _links(base: str, kind: str, ident: str) -> list[dict[str, str]]:
    return [
        {"href": f"{base}/v1/{kind}/{ident}", "rel": "self"},
        {"href": f"{base}/{kind}/{ident}", "rel": "bookmark"},
    ]


def _masked(info: dict[str, Any]) -> dict[str, Any]:
    return {k: (_SECRET if "password" in k or "secret" in k else v) for k, v in info.items()}


def _interfaces(driver: str) -> dict[str, str | None]:
    fake = driver.startswith("fake")
    chosen = {
        "bios": "no-bios",
        "boot": "fake" if fake else "redfish-virtual-media",
        "console": "no-console",
        "deploy": "fake" if fake else "direct",
        "firmware": "no-firmware",
        "inspect": "no-inspect",
        "management": "fake" if fake else "redfish",
        "network": "noop",
        "power": "fake" if fake else "redfish",
        "raid": "no-raid",
        "rescue": "no-rescue",
        "storage": "noop",
        "vendor": "no-vendor",
    }
    return {f"{iface}_interface": chosen[iface] for iface in hosts.INTERFACES if iface != "firmware"}


def node(
    n: Node,
    version: Version,
    base: str,
    *,
    conductor: str | None = None,
    detail: bool = True,
    fields: list[str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uuid": n.uuid,
        "name": n.name,
        "instance_uuid": n.instance_uuid,
        "power_state": n.power_state,
        "provision_state": n.provision_state,
        "maintenance": n.maintenance,
        "links": _links(base, "nodes", n.uuid),
    }
    if detail or fields:
        body.update(
            {
                "target_power_state": n.target_power_state,
                "target_provision_state": n.target_provision_state,
                "maintenance_reason": n.maintenance_reason,
                "fault": n.fault,
                "last_error": n.last_error,
                "reservation": None,
                "driver": n.driver,
                "driver_info": _masked(dict(n.driver_info or {})),
                "driver_internal_info": {},
                "properties": dict(n.properties or {}),
                "instance_info": dict(n.instance_info or {}),
                "extra": dict(n.extra or {}),
                "chassis_uuid": None,
                "console_enabled": False,
                "raid_config": {},
                "target_raid_config": {},
                "clean_step": {},
                "deploy_step": {},
                "resource_class": n.resource_class,
                **_interfaces(n.driver),
                "traits": [],
                "conductor_group": "",
                "automated_clean": None,
                "protected": False,
                "protected_reason": None,
                "conductor": conductor,
                "owner": n.owner,
                "description": n.description,
                "allocation_uuid": None,
                "retired": False,
                "retired_reason": None,
                "lessee": n.lessee,
                "inspection_started_at": None,
                "inspection_finished_at": None,
                "created_at": _iso(n.created_at),
                "updated_at": _iso(n.updated_at),
                "provision_updated_at": _iso(n.provision_updated_at),
                "ports": _links(base, f"nodes/{n.uuid}", "ports"),
                "states": _links(base, f"nodes/{n.uuid}", "states"),
            }
        )
    body = {k: v for k, v in body.items() if version.at_least(NODE_FIELDS_SINCE.get(k, MIN_VERSION))}
    if fields:
        body = {k: v for k, v in body.items() if k in fields or k == "links"}
    return body


PORT_LIST_FIELDS = ("uuid", "address", "links")


def port(
    p: NodePort,
    node_uuid: str,
    version: Version,
    base: str,
    *,
    detail: bool = True,
    fields: list[str] | None = None,
) -> dict[str, Any]:
    """An Ironic port; a list without detail shows uuid, address and links."""
    body: dict[str, Any] = {
        "uuid": p.uuid,
        "address": p.address,
        "node_uuid": node_uuid,
        "extra": dict(p.extra or {}),
        "internal_info": {},
        "local_link_connection": dict(p.local_link_connection or {}),
        "pxe_enabled": p.pxe_enabled,
        "portgroup_uuid": None,
        "physical_network": p.physical_network,
        "is_smartnic": False,
        "created_at": _iso(p.created_at),
        "updated_at": _iso(p.updated_at),
        "links": _links(base, "ports", p.uuid),
    }
    body = {k: v for k, v in body.items() if version.at_least(PORT_FIELDS_SINCE.get(k, MIN_VERSION))}
    if fields:
        return {k: v for k, v in body.items() if k in fields}
    if not detail:
        return {k: v for k, v in body.items() if k in PORT_LIST_FIELDS}
    return body


def port_list(
    rows: list[tuple[NodePort, str]],
    version: Version,
    base: str,
    *,
    detail: bool,
    fields: list[str] | None,
    limit: int | None,
    next_url: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ports": [port(p, node_uuid, version, base, detail=detail, fields=fields) for p, node_uuid in rows]
    }
    if limit and len(rows) == limit and next_url:
        body["next"] = next_url
    return body


_STATE_FIELDS = (
    "power_state",
    "target_power_state",
    "provision_state",
    "target_provision_state",
    "last_error",
    "provision_updated_at",
    "console_enabled",
    "raid_config",
    "target_raid_config",
)


def node_states(n: Node, version: Version) -> dict[str, Any]:
    """GET /v1/nodes/{n}/states."""
    shown = node(n, version, "", detail=True)
    return {k: shown[k] for k in _STATE_FIELDS if k in shown}


def node_list(
    nodes: list[Node],
    version: Version,
    base: str,
    *,
    owners: dict[str, str | None],
    detail: bool,
    fields: list[str] | None,
    limit: int | None,
    next_url: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "nodes": [
            node(n, version, base, conductor=owners.get(n.uuid), detail=detail, fields=fields) for n in nodes
        ]
    }
    if limit and len(nodes) == limit and next_url:
        body["next"] = next_url
    return body


def _version_doc(base: str) -> dict[str, Any]:
    return {
        "id": "v1",
        "links": [{"href": f"{base}/v1/", "rel": "self"}],
        "status": "CURRENT",
        "min_version": text(MIN_VERSION),
        "version": text(MAX_VERSION),
    }


def root(base: str) -> dict[str, Any]:
    doc = _version_doc(base)
    return {
        "name": "OpenStack Ironic API",
        "description": "Ironic is an OpenStack project which enables the provision and management of "
        "baremetal machines.",
        "default_version": doc,
        "versions": [doc],
    }


def v1(base: str) -> dict[str, Any]:
    def link(kind: str) -> list[dict[str, str]]:
        return [{"href": f"{base}/v1/{kind}/", "rel": "self"}, {"href": f"{base}/{kind}/", "rel": "bookmark"}]

    return {
        "id": "v1",
        "links": [
            {"href": f"{base}/v1/", "rel": "self"},
            {
                "href": "https://docs.openstack.org/ironic/latest/contributor/webapi.html",
                "rel": "describedby",
                "type": "text/html",
            },
        ],
        "media_types": [{"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"}],
        "nodes": link("nodes"),
        "ports": link("ports"),
        "conductors": link("conductors"),
        "drivers": link("drivers"),
        "version": _version_doc(base),
    }


def conductor(c: Conductor, alive: bool, base: str, detail: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hostname": c.name,
        "conductor_group": "",
        "alive": alive,
        "links": _links(base, "conductors", c.name),
    }
    if detail:
        body.update(
            {"drivers": list(DRIVERS), "created_at": _iso(c.created_at), "updated_at": _iso(c.last_heartbeat)}
        )
    return body


def driver(name: str, live: list[str], base: str, detail: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "hosts": live,
        "type": "dynamic",
        "links": _links(base, "drivers", name),
    }
    if detail:
        body.update({f"default_{k}": v for k, v in _interfaces(name).items()})
        body.update({f"enabled_{k}s": [v] for k, v in _interfaces(name).items()})
    return body
