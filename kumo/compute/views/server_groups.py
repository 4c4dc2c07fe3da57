"""Server group bodies: `policy` and `rules` from 2.64, a `policies` list and `metadata` before;
project and user ids from 2.13."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kumo.compute.microversion import Microversion
from kumo.compute.server_groups import OWNER_VERSION, POLICY_VERSION, GroupInfo


def server_group(info: GroupInfo, mv: Microversion) -> dict[str, Any]:
    group = info.group
    body: dict[str, Any] = {"id": group.uuid, "name": group.name}
    if mv.at_least(POLICY_VERSION):
        body["policy"] = group.policy
        body["rules"] = dict(group.rules or {})
    else:
        body["policies"] = [group.policy]
        body["metadata"] = {}
    body["members"] = list(info.members)
    if mv.at_least(OWNER_VERSION):
        body["project_id"] = group.project_id
        body["user_id"] = group.user_id
    return body


def show(info: GroupInfo, mv: Microversion) -> dict[str, Any]:
    return {"server_group": server_group(info, mv)}


def index(infos: Sequence[GroupInfo], mv: Microversion) -> dict[str, Any]:
    return {"server_groups": [server_group(i, mv) for i in infos]}
