"""Pure renderers of the metadata trees, from one instance's bundle: the OpenStack tree
(`/openstack/...`) and the EC2 tree (`/<version>/meta-data/...`, `/latest/...`), in the versions
and formats Nova serves (nova/api/metadata/base.py) and cloud-init reads
(cloudinit/sources/helpers/openstack.py, cloudinit/sources/helpers/ec2.py). No I/O: the
responder and the config drive builder both call `render`.

A directory answers a listing, one entry a line, subdirectories ending in "/"; an EC2
`public-keys/` lists `0=<key name>` (cloud-init then reads `public-keys/0/openssh-key`). Unknown
paths answer 404, as Nova's."""

from __future__ import annotations

import base64
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kumo.metadata.bundle import Bundle

OPENSTACK_VERSIONS = (
    "2012-08-10",
    "2013-04-04",  # Grizzly: random_seed
    "2013-10-17",  # Havana: vendor_data.json
    "2015-10-15",  # Liberty: network_data.json, project_id, keys
    "2016-06-30",  # Newton one: devices
    "2016-10-06",  # Newton two: vendor_data2.json
    "2017-02-22",  # Ocata
    "2018-08-27",  # Rocky
    "2020-10-14",  # Victoria: dedicated_cpus
)
EC2_VERSIONS = (
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
)
LATEST = "latest"
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
OCTETS = "application/octet-stream"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = TEXT


NOT_FOUND = Answer(404, b"404 Not Found\n\nThe resource could not be found.\n")


def _listing(entries: list[str]) -> Answer:
    return Answer(200, "\n".join(entries).encode())


def _json(value: Any) -> Answer:
    return Answer(200, json.dumps(value, separators=(", ", ": ")).encode(), JSON)


def _at_least(version: str, since: str) -> bool:
    """Whether an OpenStack tree version includes what `since` added (latest has everything)."""
    return version == LATEST or version >= since


# -- the OpenStack tree ------------------------------------------------------------------------


def fqdn(bundle: Bundle) -> str:
    """Nova's hostname in metadata: the instance's hostname and its dhcp_domain."""
    return f"{bundle.hostname}.{bundle.dhcp_domain}" if bundle.dhcp_domain else bundle.hostname


def meta_data(bundle: Bundle, version: str = LATEST, random_seed: bytes | None = None) -> dict[str, Any]:
    """openstack/<version>/meta_data.json."""
    data: dict[str, Any] = {
        "uuid": bundle.uuid,
        "meta": dict(bundle.meta),
        "public_keys": {key.name: key.data for key in bundle.public_keys},
        "hostname": fqdn(bundle),
        "name": bundle.name,
        "launch_index": bundle.launch_index,
        "availability_zone": bundle.availability_zone,
    }
    if bundle.admin_pass:  # Nova's, in every version: the server's adminPass
        data["admin_pass"] = bundle.admin_pass
    if _at_least(version, "2013-04-04") and random_seed is not None:
        data["random_seed"] = base64.b64encode(random_seed).decode()
    if _at_least(version, "2015-10-15"):
        data["keys"] = [{"name": k.name, "type": k.type, "data": k.data} for k in bundle.public_keys]
        data["project_id"] = bundle.project_id
    if _at_least(version, "2016-06-30"):
        data["devices"] = []  # tagged devices: kumo has no device tags yet
    if _at_least(version, "2020-10-14"):
        data["dedicated_cpus"] = []
    return data


def network_data(bundle: Bundle) -> dict[str, Any]:
    """openstack/<version>/network_data.json, as Nova writes it (nova/virt/netutils.py): a link
    per port, a network per fixed IP (ipv4_dhcp where the subnet runs DHCP, else a static ipv4
    with its routes), and the DNS servers as services."""
    links: list[dict[str, Any]] = []
    networks: list[dict[str, Any]] = []
    services: list[dict[str, str]] = []
    for port in bundle.ports:
        link = port.device()
        links.append(
            {
                "id": link,
                "vif_id": port.id,
                "type": "bridge",
                "mtu": port.mtu,
                "ethernet_mac_address": port.mac_address,
            }
        )
        for fixed in port.fixed_ips:
            for server in fixed.dns_nameservers:
                service = {"type": "dns", "address": server}
                if service not in services:
                    services.append(service)
            net: dict[str, Any] = {
                "id": f"network{len(networks)}",
                "link": link,
                "network_id": port.network_id,
            }
            if fixed.enable_dhcp or not fixed.cidr:
                net["type"] = "ipv4_dhcp"
            else:
                subnet = ipaddress.ip_network(fixed.cidr, strict=False)
                routes = [
                    {
                        "network": str(ipaddress.ip_network(r["destination"], strict=False).network_address),
                        "netmask": str(ipaddress.ip_network(r["destination"], strict=False).netmask),
                        "gateway": r["nexthop"],
                    }
                    for r in fixed.host_routes
                ]
                if fixed.gateway_ip:
                    routes.insert(
                        0, {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": fixed.gateway_ip}
                    )
                net.update(
                    type="ipv4",
                    ip_address=fixed.ip_address,
                    netmask=str(subnet.netmask),
                    routes=routes,
                    services=[{"type": "dns", "address": s} for s in fixed.dns_nameservers],
                )
            networks.append(net)
    return {"links": links, "networks": networks, "services": services}


def _openstack_files(bundle: Bundle, version: str) -> list[str]:
    files = ["meta_data.json"]
    if bundle.user_data() is not None:
        files.append("user_data")
    if _at_least(version, "2013-10-17"):
        files.append("vendor_data.json")
    if _at_least(version, "2015-10-15"):
        files.append("network_data.json")
    if _at_least(version, "2016-10-06"):
        files.append("vendor_data2.json")
    return files


def openstack_file(bundle: Bundle, version: str, name: str, random_seed: bytes | None = None) -> Answer:
    if name not in _openstack_files(bundle, version):
        return NOT_FOUND
    if name == "meta_data.json":
        return _json(meta_data(bundle, version, random_seed))
    if name == "user_data":
        return Answer(200, bundle.user_data() or b"", OCTETS)
    if name == "vendor_data.json":
        return _json(bundle.vendor_data)
    if name == "vendor_data2.json":
        return _json(bundle.vendor_data2)
    return _json(network_data(bundle))


def _render_openstack(bundle: Bundle, parts: list[str], random_seed: bytes | None) -> Answer:
    if not parts:
        return _listing([*OPENSTACK_VERSIONS, LATEST])
    version = parts[0]
    if version != LATEST and version not in OPENSTACK_VERSIONS:
        return NOT_FOUND
    if len(parts) == 1:
        return _listing(_openstack_files(bundle, version))
    if len(parts) == 2:
        return openstack_file(bundle, version, parts[1], random_seed)
    return NOT_FOUND


# -- the EC2 tree ------------------------------------------------------------------------------

Tree = Mapping[str, "Tree | str"]


def local_ipv4(bundle: Bundle) -> str:
    for port in bundle.ports:
        for fixed in port.fixed_ips:
            if ipaddress.ip_address(fixed.ip_address).version == 4:
                return fixed.ip_address
    return ""


def ec2_meta_data(bundle: Bundle) -> dict[str, Any]:
    """The EC2 meta-data tree (Nova's get_ec2_metadata): a dict per directory, text leaves."""
    name = fqdn(bundle)
    keys = {
        str(i): {"_name": f"{i}={key.name}", "openssh-key": key.data}
        for i, key in enumerate(bundle.public_keys)
    }
    return {
        "ami-id": bundle.ec2_image_id,
        "ami-launch-index": str(bundle.launch_index),
        "ami-manifest-path": "FIXME",
        "block-device-mapping": {"ami": "vda", "root": "/dev/vda"},
        "hostname": name,
        "instance-action": "none",
        "instance-id": bundle.ec2_instance_id,
        "instance-type": bundle.instance_type,
        "local-hostname": name,
        "local-ipv4": local_ipv4(bundle),
        "placement": {"availability-zone": bundle.availability_zone},
        "public-hostname": name,
        "public-ipv4": "",
        "public-keys": keys,
        "reservation-id": bundle.reservation_id,
        "security-groups": "\n".join(bundle.security_groups),
    }


def _ec2_listing(tree: Mapping[str, Any]) -> Answer:
    entries = []
    for key in sorted(tree):
        value = tree[key]
        if key == "_name":
            continue
        if isinstance(value, dict):
            entries.append(value.get("_name", key + "/"))
        else:
            entries.append(key)
    return _listing(entries)


def _render_ec2(bundle: Bundle, parts: list[str]) -> Answer:
    if not parts:
        return _listing([*EC2_VERSIONS, LATEST])
    if parts[0] != LATEST and parts[0] not in EC2_VERSIONS:
        return NOT_FOUND
    top: dict[str, Any] = {"meta-data": ec2_meta_data(bundle)}
    user_data = bundle.user_data()
    if user_data is not None:
        top["user-data"] = user_data
    node: Any = top
    for part in parts[1:]:
        if not isinstance(node, dict) or part not in node or part == "_name":
            return NOT_FOUND
        node = node[part]
    if isinstance(node, dict):
        return _ec2_listing(node)
    if isinstance(node, bytes):
        return Answer(200, node, OCTETS)
    return Answer(200, str(node).encode())


# -- entry point -------------------------------------------------------------------------------


def split_path(path: str) -> list[str]:
    """'/openstack/latest/' → ['openstack', 'latest'] (a trailing slash names the same thing;
    the query string is ignored)."""
    return [part for part in path.split("?", 1)[0].split("/") if part]


def render(bundle: Bundle, path: str, random_seed: bytes | None = None) -> Answer:
    """The answer to a GET of `path` on the metadata service for this instance."""
    parts = split_path(path)
    if parts and parts[0] == "openstack":
        return _render_openstack(bundle, parts[1:], random_seed)
    if any(part in (".", "..") for part in parts):
        return NOT_FOUND
    return _render_ec2(bundle, parts)
