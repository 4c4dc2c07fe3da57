"""Neutron's error types (neutron-lib's exception names and message templates) as kumo errors.
`kind` carries the Neutron type: kumo/api/errors.py writes it as `NeutronError.type`."""

from __future__ import annotations

from kumo.errors import BadRequest, Conflict, KumoError, NotFound


class InvalidInput(BadRequest):
    kind = "InvalidInput"

    def __init__(self, detail: str) -> None:
        super().__init__(f"Invalid input for operation: {detail}")


class NetworkNotFound(NotFound):
    kind = "NetworkNotFound"

    def __init__(self, network_id: str) -> None:
        super().__init__(f"Network {network_id} could not be found.")


class SubnetNotFound(NotFound):
    kind = "SubnetNotFound"

    def __init__(self, subnet_id: str) -> None:
        super().__init__(f"Subnet {subnet_id} could not be found.")


class PortNotFound(NotFound):
    kind = "PortNotFound"

    def __init__(self, port_id: str) -> None:
        super().__init__(f"Port {port_id} could not be found.")


class SecurityGroupNotFound(NotFound):
    kind = "SecurityGroupNotFound"

    def __init__(self, group_id: str) -> None:
        super().__init__(f"Security group {group_id} does not exist")


class SecurityGroupRuleNotFound(NotFound):
    kind = "SecurityGroupRuleNotFound"

    def __init__(self, rule_id: str) -> None:
        super().__init__(f"Security group rule {rule_id} does not exist")


class ExtensionNotFound(NotFound):
    kind = "ExtensionNotFound"

    def __init__(self, alias: str) -> None:
        super().__init__(f"Extension with alias {alias} does not exist")


class NetworkInUse(Conflict):
    kind = "NetworkInUse"

    def __init__(self, network_id: str) -> None:
        super().__init__(
            f"Unable to complete operation on network {network_id}. "
            "There are one or more ports still in use on the network."
        )


class SubnetInUse(Conflict):
    kind = "SubnetInUse"

    def __init__(self, subnet_id: str) -> None:
        super().__init__(
            f"Unable to complete operation on subnet {subnet_id}: "
            "One or more ports have an IP allocation from this subnet."
        )


class PortInUse(Conflict):
    kind = "PortInUse"

    def __init__(self, port_id: str, device_id: str) -> None:
        super().__init__(
            f"Unable to complete operation on port {port_id}: it is in use by server {device_id}; "
            "delete or detach the server first."
        )


class MacAddressInUse(Conflict):
    kind = "MacAddressInUse"

    def __init__(self, network_id: str, mac: str) -> None:
        super().__init__(
            f"Unable to complete operation for network {network_id}. The mac address {mac} is in use."
        )


class IpAddressAlreadyAllocated(Conflict):
    kind = "IpAddressAlreadyAllocated"

    def __init__(self, ip: str, subnet_id: str) -> None:
        super().__init__(f"IP address {ip} already allocated in subnet {subnet_id}")


class IpAddressGenerationFailure(Conflict):
    kind = "IpAddressGenerationFailure"

    def __init__(self, network_id: str) -> None:
        super().__init__(f"No more IP addresses available on network {network_id}.")


class GatewayConflictWithAllocationPools(Conflict):
    kind = "GatewayConflictWithAllocationPools"

    def __init__(self, gateway: str, pool: str) -> None:
        super().__init__(f"Gateway ip {gateway} conflicts with allocation pool {pool}.")


class SecurityGroupRuleExists(Conflict):
    kind = "SecurityGroupRuleExists"

    def __init__(self, rule_id: str) -> None:
        super().__init__(f"Security group rule already exists. Rule id is {rule_id}.")


class SecurityGroupInUse(Conflict):
    kind = "SecurityGroupInUse"

    def __init__(self, group_id: str) -> None:
        super().__init__(f"Security Group {group_id} in use.")


class SecurityGroupCannotRemoveDefault(Conflict):
    kind = "SecurityGroupCannotRemoveDefault"

    def __init__(self) -> None:
        super().__init__("Insufficient rights for removing default security group.")


class OverQuota(Conflict):
    kind = "OverQuota"

    def __init__(self, resource: str) -> None:
        super().__init__(f"Quota exceeded for resources: ['{resource}'].")


class MacAddressGenerationFailure(KumoError):
    status, kind, title = 503, "MacAddressGenerationFailure", "Service Unavailable"

    def __init__(self, network_id: str) -> None:
        super().__init__(f"Unable to generate unique mac on network {network_id}.")
