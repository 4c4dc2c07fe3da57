"""Bundles for the metadata tests."""

from __future__ import annotations

import base64

from kumo.metadata.bundle import Bundle, FixedIp, PortInfo, PublicKey

UUID = "5f7a1c3e-0b1d-4e8f-9a6b-2c4d6e8f0a1b"
NET = "8c2e4a6f-1b3d-4c5e-8f7a-9b0c1d2e3f4a"
PORT = "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHkumo demo@kumo"
USER_DATA = b"#cloud-config\nruncmd:\n  - echo hello > /tmp/hello\n"


def port(*, dhcp: bool = True) -> PortInfo:
    return PortInfo(
        id=PORT,
        network_id=NET,
        mac_address="fa:16:3e:12:34:56",
        fixed_ips=[
            FixedIp(
                ip_address="10.0.0.5",
                subnet_id="s1",
                cidr="10.0.0.0/24",
                gateway_ip="10.0.0.1",
                enable_dhcp=dhcp,
                dns_nameservers=["10.0.0.2"],
                host_routes=[{"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}],
            )
        ],
    )


def bundle(**overrides: object) -> Bundle:
    values: dict[str, object] = {
        "uuid": UUID,
        "name": "web-1",
        "hostname": "web-1",
        "project_id": "p-1",
        "availability_zone": "az1",
        "launch_index": 2,
        "reservation_id": "r-0000abcd",
        "ec2_instance_id": "i-0000002a",
        "ec2_image_id": "ami-1234abcd",
        "instance_type": "m1.small",
        "public_keys": [PublicKey(name="demo", data=KEY)],
        "meta": {"role": "web"},
        "user_data_b64": base64.b64encode(USER_DATA).decode(),
        "ports": [port()],
    }
    values.update(overrides)
    return Bundle.model_validate(values)
