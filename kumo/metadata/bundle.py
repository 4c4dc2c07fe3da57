"""The metadata bundle: everything any metadata path needs for one instance, in one typed value.

The API builds it in one read (`kumo.metadata.backend.read_bundle`) and serves it as JSON on
`GET /internal/v1/instances/{uuid}/metadata`; agents cache it (`kumo.metadata.cache`) and every
metadata path and the config drive are rendered from it (`kumo.metadata.render`)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel, Field

DHCP_DOMAIN = "novalocal"  # Nova's default dhcp_domain: the metadata's hostname carries it


class FixedIp(BaseModel):
    """One address of a port, with the subnet it is on (what network_data.json needs)."""

    ip_address: str
    subnet_id: str = ""
    cidr: str = ""  # "10.0.0.0/24"; empty when the networking side does not say
    gateway_ip: str | None = None
    enable_dhcp: bool = True
    dns_nameservers: list[str] = Field(default_factory=list)
    host_routes: list[dict[str, str]] = Field(default_factory=list)  # [{"destination", "nexthop"}]


class PortInfo(BaseModel):
    """A port plugged into the instance (the shared port contract, plus its subnets)."""

    id: str
    network_id: str
    mac_address: str
    mtu: int = 1500
    fixed_ips: list[FixedIp] = Field(default_factory=list)
    tap: str = ""  # "tap" + id[:11] when empty

    def device(self) -> str:
        return self.tap or "tap" + self.id[:11]


class PublicKey(BaseModel):
    name: str
    type: str = "ssh"
    data: str


class Bundle(BaseModel):
    uuid: str
    name: str
    hostname: str  # the short hostname; metadata adds dhcp_domain, as Nova does
    dhcp_domain: str = DHCP_DOMAIN
    project_id: str
    availability_zone: str = "nova"
    launch_index: int = 0
    reservation_id: str = ""
    ec2_instance_id: str = ""  # "i-%08x" of the instance's integer id, as Nova's EC2 ids
    ec2_image_id: str = ""  # "ami-%08x"
    instance_type: str = ""  # the flavor's name (EC2's instance-type)
    security_groups: list[str] = Field(default_factory=list)
    public_keys: list[PublicKey] = Field(default_factory=list)
    meta: dict[str, str] = Field(default_factory=dict)
    user_data_b64: str | None = None  # as the compute API stores it (base64)
    admin_pass: str | None = Field(default=None, repr=False)  # meta_data.json's; never in a repr
    vendor_data: dict[str, Any] = Field(default_factory=dict)
    vendor_data2: dict[str, Any] = Field(default_factory=dict)
    ports: list[PortInfo] = Field(default_factory=list)

    def user_data(self) -> bytes | None:
        """The raw user data (None when the server has none or it is not base64)."""
        if self.user_data_b64 is None:
            return None
        try:
            return base64.b64decode(self.user_data_b64, validate=False)
        except (binascii.Error, ValueError):
            return None
