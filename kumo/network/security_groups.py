"""Security groups and their rules (Neutron semantics): the per-project `default` group made on
first need with Neutron's four default rules, validation of rules (protocol, port range or ICMP
type/code, remote prefix or group, ethertype), duplicates refused, groups in use kept.

The agents' firewalls read the rules of their ports' groups (kumo/network/firewall.py): adding
or removing a rule makes a firewall sync pending, in the same transaction, on every host with a
port in the group; deleting a group drops the rules that named it as their remote group, and so
syncs the hosts of those rules' groups. No network's DHCP generation moves (rules are no DHCP
data)."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import delete, select, true
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.errors import Forbidden
from kumo.network import firewall, quotas
from kumo.network.attrs import envelope, integer, project_of, text, uuid_text
from kumo.network.errors import (
    InvalidInput,
    SecurityGroupCannotRemoveDefault,
    SecurityGroupInUse,
    SecurityGroupNotFound,
    SecurityGroupRuleExists,
    SecurityGroupRuleNotFound,
)
from kumo.network.models import DefaultSecurityGroup, PortSecurityGroup, SecurityGroup, SecurityGroupRule

DIRECTIONS = ("ingress", "egress")
ETHERTYPES = ("IPv4", "IPv6")
# Protocols with ports, and Neutron's other named protocols (neutron-lib constants.IP_PROTOCOL_MAP).
PORT_PROTOCOLS = frozenset({"tcp", "udp", "sctp", "udplite", "dccp", "6", "17", "132", "136", "33"})
ICMP_PROTOCOLS = frozenset({"icmp", "icmpv6", "ipv6-icmp", "1", "58"})
NAMED_PROTOCOLS = PORT_PROTOCOLS | ICMP_PROTOCOLS | {
    "ah", "egp", "esp", "gre", "igmp", "ipip", "ipv6-encap", "ipv6-frag", "ipv6-nonxt", "ipv6-opts",
    "ipv6-route", "ospf", "pgm", "rsvp", "vrrp",
}  # fmt: skip
GROUP_ATTRS = frozenset({"name", "description", "project_id", "stateful", "tags"})
RULE_ATTRS = frozenset(
    {
        "security_group_id",
        "direction",
        "ethertype",
        "protocol",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "remote_group_id",
        "remote_address_group_id",
        "description",
        "project_id",
    }
)


def _visible(ctx: RequestContext) -> Any:
    return true() if ctx.is_admin else SecurityGroup.project_id == ctx.project_id


def ensure_default(session: Session, project_id: str) -> str:
    """The id of the project's `default` group, created with Neutron's default rules on first
    need (egress IPv4 and IPv6 to anywhere; ingress IPv4 and IPv6 from members of the group).
    Under the project's networking lock, so two workers never make two."""
    found = session.scalar(
        select(DefaultSecurityGroup.security_group_id).where(DefaultSecurityGroup.project_id == project_id)
    )
    if found is not None:
        return found
    quotas.lock_project(session, project_id)
    found = session.scalar(
        select(DefaultSecurityGroup.security_group_id).where(DefaultSecurityGroup.project_id == project_id)
    )
    if found is not None:
        return found
    group = SecurityGroup(
        id=str(uuid.uuid4()), project_id=project_id, name="default", description="Default security group"
    )
    session.add(group)
    session.flush()
    session.add(DefaultSecurityGroup(project_id=project_id, security_group_id=group.id))
    for ethertype in ETHERTYPES:
        session.add(_rule(group, "egress", ethertype))
        session.add(_rule(group, "ingress", ethertype, remote_group_id=group.id))
    session.flush()
    return group.id


def _rule(
    group: SecurityGroup, direction: str, ethertype: str, remote_group_id: str | None = None
) -> SecurityGroupRule:
    return SecurityGroupRule(
        id=str(uuid.uuid4()),
        security_group_id=group.id,
        project_id=group.project_id,
        direction=direction,
        ethertype=ethertype,
        remote_group_id=remote_group_id,
    )


def default_group_ids(session: Session, group_ids: Sequence[str]) -> set[str]:
    if not group_ids:
        return set()
    return set(
        session.scalars(
            select(DefaultSecurityGroup.security_group_id).where(
                DefaultSecurityGroup.security_group_id.in_(group_ids)
            )
        )
    )


def get_group(session: Session, ctx: RequestContext, group_id: str) -> SecurityGroup:
    group = session.scalar(select(SecurityGroup).where(SecurityGroup.id == group_id, _visible(ctx)))
    if group is None:
        raise SecurityGroupNotFound(group_id)
    return group


def groups_by_id(session: Session, group_ids: Collection[str]) -> list[SecurityGroup]:
    if not group_ids:
        return []
    return list(session.scalars(select(SecurityGroup).where(SecurityGroup.id.in_(group_ids))))


def list_groups(session: Session, ctx: RequestContext) -> list[SecurityGroup]:
    """Creates the caller's `default` group first, as Neutron does on a project's first look."""
    if ctx.project_id:
        ensure_default(session, ctx.project_id)
    query = select(SecurityGroup).where(_visible(ctx)).order_by(SecurityGroup.created_at, SecurityGroup.id)
    return list(session.scalars(query))


def rules_by_group(session: Session, group_ids: Sequence[str]) -> dict[str, list[SecurityGroupRule]]:
    rules: dict[str, list[SecurityGroupRule]] = {gid: [] for gid in group_ids}
    if group_ids:
        query = (
            select(SecurityGroupRule)
            .where(SecurityGroupRule.security_group_id.in_(group_ids))
            .order_by(SecurityGroupRule.created_at, SecurityGroupRule.id)
        )
        for rule in session.scalars(query):
            rules[rule.security_group_id].append(rule)
    return rules


def create_group(session: Session, ctx: RequestContext, body: object) -> SecurityGroup:
    ctx.require_writer()
    attrs = envelope(body, "security_group", GROUP_ATTRS)
    project_id = project_of(attrs, ctx.project_id, ctx.is_admin)
    name = text(attrs.get("name"), "name")
    if name == "default":
        raise InvalidInput("Default security group already exists.")
    if attrs.get("stateful", True) not in (True, "true", "True"):
        raise InvalidInput("stateless security groups are not supported by this cloud")
    ensure_default(session, project_id)
    quotas.check(session, project_id, "security_group")
    group = SecurityGroup(
        id=str(uuid.uuid4()),
        project_id=project_id,
        name=name,
        description=text(attrs.get("description"), "description"),
    )
    session.add(group)
    session.flush()
    for ethertype in ETHERTYPES:
        session.add(_rule(group, "egress", ethertype))
    session.flush()
    return group


def update_group(session: Session, ctx: RequestContext, group_id: str, body: object) -> SecurityGroup:
    ctx.require_writer()
    attrs = envelope(body, "security_group", frozenset({"name", "description", "stateful"}))
    group = get_group(session, ctx, group_id)
    if "name" in attrs:
        name = text(attrs["name"], "name")
        if name != group.name and group.id in default_group_ids(session, [group.id]):
            raise InvalidInput("Updating default security group not allowed.")
        group.name = name
    if "description" in attrs:
        group.description = text(attrs["description"], "description")
    if attrs.get("stateful", True) not in (True, "true", "True"):
        raise InvalidInput("stateless security groups are not supported by this cloud")
    group.revision_number += 1
    session.flush()
    return group


def delete_group(session: Session, ctx: RequestContext, group_id: str) -> None:
    ctx.require_writer()
    group = get_group(session, ctx, group_id)
    if group.id in default_group_ids(session, [group.id]) and not ctx.is_admin:
        raise SecurityGroupCannotRemoveDefault()
    used = session.scalar(
        select(PortSecurityGroup.port_id).where(PortSecurityGroup.security_group_id == group_id).limit(1)
    )
    if used is not None:
        raise SecurityGroupInUse(group_id)
    # Rules of other groups that name this one as their remote group go with it (as in Neutron).
    affected = firewall.hosts_of_groups(session, firewall.groups_naming(session, [group_id]))
    session.execute(delete(SecurityGroupRule).where(SecurityGroupRule.remote_group_id == group_id))
    session.delete(group)
    session.flush()
    firewall.request(session, affected)


def get_rule(session: Session, ctx: RequestContext, rule_id: str) -> SecurityGroupRule:
    query = select(SecurityGroupRule).where(SecurityGroupRule.id == rule_id)
    if not ctx.is_admin:
        query = query.where(SecurityGroupRule.project_id == ctx.project_id)
    rule = session.scalar(query)
    if rule is None:
        raise SecurityGroupRuleNotFound(rule_id)
    return rule


def list_rules(session: Session, ctx: RequestContext) -> list[SecurityGroupRule]:
    if ctx.project_id:
        ensure_default(session, ctx.project_id)
    query = select(SecurityGroupRule).order_by(SecurityGroupRule.created_at, SecurityGroupRule.id)
    if not ctx.is_admin:
        query = query.where(SecurityGroupRule.project_id == ctx.project_id)
    return list(session.scalars(query))


def _protocol(raw: object) -> str | None:
    if raw is None or raw == "any":
        return None
    value = str(raw).lower() if isinstance(raw, str | int) and not isinstance(raw, bool) else None
    if value is not None and value.isdigit() and value.isascii():
        number = int(value)
        if number <= 255:
            return str(number)
    elif value in NAMED_PROTOCOLS:
        return value
    raise InvalidInput(f"Security group rule protocol {raw} not supported.")


def _ports(protocol: str | None, low: object, high: object) -> tuple[int | None, int | None]:
    if protocol in ICMP_PROTOCOLS:
        icmp_type = None if low is None else integer(low, "ICMP type (port_range_min)", 0, 255)
        icmp_code = None if high is None else integer(high, "ICMP code (port_range_max)", 0, 255)
        if icmp_code is not None and icmp_type is None:
            raise InvalidInput(
                "ICMP code (port-range-max) is provided but ICMP type (port-range-min) is missing."
            )
        return icmp_type, icmp_code
    if low is None and high is None:
        return None, None
    if protocol not in PORT_PROTOCOLS:
        raise InvalidInput(
            f"Port range is only allowed with tcp, udp, sctp, udplite and dccp, not {protocol}"
        )
    first = integer(low if low is not None else high, "port_range_min", 1, 65535)
    last = integer(high if high is not None else low, "port_range_max", 1, 65535)
    if first > last:
        raise InvalidInput("For TCP/UDP protocols, port_range_min must be <= port_range_max")
    return first, last


def _remote_prefix(raw: object, ethertype: str) -> str | None:
    if raw is None:
        return None
    try:
        network = ipaddress.ip_network(str(raw).strip(), strict=False) if isinstance(raw, str) else None
    except ValueError:
        network = None
    if network is None:
        raise InvalidInput(f"'{raw}' is not a valid IP prefix for remote_ip_prefix")
    if f"IPv{network.version}" != ethertype:
        raise InvalidInput(f"Conflicting value ethertype {ethertype} for CIDR {raw}")
    return str(network)


def create_rule(session: Session, ctx: RequestContext, body: object) -> SecurityGroupRule:
    ctx.require_writer()
    attrs = envelope(body, "security_group_rule", RULE_ATTRS)
    if "security_group_id" not in attrs:
        raise InvalidInput("security_group_id is required")
    group = get_group(session, ctx, uuid_text(attrs["security_group_id"], "security_group_id"))
    if not ctx.owns(group.project_id):
        raise Forbidden("Policy doesn't allow this operation to be performed.")
    direction = attrs.get("direction")
    if direction not in DIRECTIONS:
        raise InvalidInput(f"'{direction}' is not in ['ingress', 'egress'] for direction")
    ethertype = attrs.get("ethertype", "IPv4")
    if ethertype not in ETHERTYPES:
        raise InvalidInput(f"'{ethertype}' is not in ['IPv4', 'IPv6'] for ethertype")
    protocol = _protocol(attrs.get("protocol"))
    low, high = _ports(protocol, attrs.get("port_range_min"), attrs.get("port_range_max"))
    prefix = _remote_prefix(attrs.get("remote_ip_prefix"), ethertype)
    remote_group = attrs.get("remote_group_id")
    if prefix is not None and remote_group is not None:
        raise InvalidInput("Only remote_ip_prefix or remote_group_id may be provided.")
    if attrs.get("remote_address_group_id") is not None:
        raise InvalidInput("address groups are not supported by this cloud")
    if remote_group is not None:
        remote_group = get_group(session, ctx, uuid_text(remote_group, "remote_group_id")).id
    quotas.check(session, group.project_id, "security_group_rule")
    for existing in rules_by_group(session, [group.id])[group.id]:
        same = (
            existing.direction == direction
            and existing.ethertype == ethertype
            and existing.protocol == protocol
            and existing.port_range_min == low
            and existing.port_range_max == high
            and existing.remote_ip_prefix == prefix
            and existing.remote_group_id == remote_group
        )
        if same:
            raise SecurityGroupRuleExists(existing.id)
    rule = SecurityGroupRule(
        id=str(uuid.uuid4()),
        security_group_id=group.id,
        project_id=group.project_id,
        direction=direction,
        ethertype=ethertype,
        protocol=protocol,
        port_range_min=low,
        port_range_max=high,
        remote_ip_prefix=prefix,
        remote_group_id=remote_group,
        description=text(attrs.get("description"), "description"),
    )
    session.add(rule)
    group.revision_number += 1
    session.flush()
    firewall.request(session, firewall.hosts_of_groups(session, [group.id]))
    return rule


def delete_rule(session: Session, ctx: RequestContext, rule_id: str) -> None:
    ctx.require_writer()
    rule = get_rule(session, ctx, rule_id)
    session.delete(rule)
    session.flush()
    firewall.request(session, firewall.hosts_of_groups(session, [rule.security_group_id]))


def resolve_for_port(session: Session, ctx: RequestContext, project_id: str, raw: object) -> list[str]:
    """A port's `security_groups` request: None → the project's default group; a list of ids
    (or, as Nova passes them, names) of groups the caller sees."""
    if raw is None:
        return [ensure_default(session, project_id)]
    if not isinstance(raw, list):
        raise InvalidInput("security_groups must be a list of security group ids")
    ids: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            raise InvalidInput(f"'{item}' is not a valid security group id")
        group = session.scalar(select(SecurityGroup).where(SecurityGroup.id == item, _visible(ctx)))
        if group is None:
            if item == "default":
                group_id = ensure_default(session, project_id)
            else:
                named = list(
                    session.scalars(
                        select(SecurityGroup.id).where(
                            SecurityGroup.name == item, SecurityGroup.project_id == project_id
                        )
                    )
                )
                if len(named) != 1:
                    raise SecurityGroupNotFound(item)
                group_id = named[0]
        else:
            group_id = group.id
        if group_id not in ids:
            ids.append(group_id)
    return ids
