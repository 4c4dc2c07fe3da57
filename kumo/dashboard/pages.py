"""What each dashboard page shows and does, as calls to kumo's public APIs (`client.API`) and
plain data for its template. Nothing here reads the database or imports a service's domain
code: the dashboard is a client, and the API decides what its user may see and do. Forms arrive
as dicts of strings; an API refusal propagates as `APIError` with the API's message."""

from __future__ import annotations

import base64
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kumo.apiclient import APIError
from kumo.dashboard import exposition
from kumo.dashboard.client import API, IRONIC_VERSION, WATCHER_VERSION, Token

COMPUTE = "/compute/v2.1"
NETWORK = "/networking/v2.0"
IMAGE = "/image/v2"
BAREMETAL = "/baremetal/v1"
WATCHER = "/infra-optim/v1"

# A server's status that moves on by itself: its page keeps polling while it shows one.
SETTLED = ("ACTIVE", "SHUTOFF", "ERROR", "DELETED", "SOFT_DELETED", "SHELVED_OFFLOADED", "PAUSED")

# The server actions the dashboard offers, as the compute API's action bodies.
SERVER_ACTIONS: dict[str, Any] = {
    "start": {"os-start": None},
    "stop": {"os-stop": None},
    "reboot": {"reboot": {"type": "SOFT"}},
    "hard-reboot": {"reboot": {"type": "HARD"}},
    "lock": {"lock": None},
    "unlock": {"unlock": None},
}
SERVER_GROUP_POLICIES = ("anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity")
FAILURE_DOMAINS = ("host", "rack", "az", "region")


def q(segment: str) -> str:
    """One path segment of an API URL, quoted whole: an id from a page's URL stays one segment."""
    quoted = quote(segment, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted  # no dot segment either


def flavor_kind(flavor: dict[str, Any]) -> str:
    """ "baremetal" for a flavor that asks for a custom resource class (Ironic's rule: a node's
    class, `resources:CUSTOM_<CLASS>=1`), "vm" otherwise."""
    specs = flavor.get("extra_specs") or {}
    return "baremetal" if any(k.startswith("resources:CUSTOM_") for k in specs) else "vm"


def _addresses(server: dict[str, Any]) -> list[str]:
    return [
        f"{net}: {entry['addr']}"
        for net, entries in sorted((server.get("addresses") or {}).items())
        for entry in entries
    ]


def server_row(server: dict[str, Any]) -> dict[str, Any]:
    flavor = server.get("flavor") or {}
    return {
        "id": server["id"],
        "name": server["name"],
        "status": server["status"],
        "task": server.get("OS-EXT-STS:task_state") or "",
        "settled": server["status"] in SETTLED,
        "flavor": flavor.get("original_name", flavor.get("id", "")),
        "kind": flavor_kind(flavor),
        "addresses": _addresses(server),
        "zone": server.get("OS-EXT-AZ:availability_zone") or "",
        "key_name": server.get("key_name") or "",
        "locked": bool(server.get("locked")),
        "progress": server.get("progress") or 0,
        "fault": (server.get("fault") or {}).get("message", ""),
    }


def group_label(group: dict[str, Any]) -> str:
    """ "db (anti-affinity by rack)": a server group's name, policy and failure domain."""
    domain = (group.get("rules") or {}).get("failure_domain", "host")
    return f"{group['name']} ({group.get('policy', '')} by {domain})"


def servers(api: API) -> list[dict[str, Any]]:
    """The project's servers, each with its server group (HA group) when it is in one."""
    groups = {
        m: group_label(g)
        for g in api.get(f"{COMPUTE}/os-server-groups")["server_groups"]
        for m in g["members"]
    }
    rows = [server_row(s) for s in api.get(f"{COMPUTE}/servers/detail")["servers"]]
    for row in rows:
        row["group"] = groups.get(row["id"], "")
    return rows


def server(api: API, server_id: str) -> dict[str, Any]:
    return server_row(api.get(f"{COMPUTE}/servers/{q(server_id)}")["server"])


def server_detail(api: API, server_id: str) -> dict[str, Any]:
    """The server, its console's last lines and its actions with their events (newest first)."""
    row = server(api, server_id)
    row["console"] = row["console_error"] = ""
    try:
        if row["settled"]:  # a server still building has no console yet
            console = api.post(
                f"{COMPUTE}/servers/{q(server_id)}/action", {"os-getConsoleOutput": {"length": 100}}
            )
            row["console"] = console.get("output") or ""
    except APIError as exc:
        row["console_error"] = exc.message
    actions = api.get(f"{COMPUTE}/servers/{q(server_id)}/os-instance-actions")["instanceActions"]
    for action in actions[:10]:
        one = api.get(f"{COMPUTE}/servers/{q(server_id)}/os-instance-actions/{q(action['request_id'])}")
        action["events"] = one["instanceAction"].get("events") or []
    row["actions"] = actions[:10]
    return row


def server_action(api: API, server_id: str, action: str) -> None:
    if action == "delete":
        api.delete(f"{COMPUTE}/servers/{q(server_id)}")
        return
    body = SERVER_ACTIONS.get(action)
    if body is None:
        raise APIError(400, f"Unknown action: {action}")
    api.post(f"{COMPUTE}/servers/{q(server_id)}/action", body)


def create_choices(api: API) -> dict[str, Any]:
    """What the create form offers: this project's flavors, images, networks, key pairs, groups."""
    flavors = api.get(f"{COMPUTE}/flavors/detail")["flavors"]
    return {
        "flavors": [{"id": f["id"], "name": f["name"], "kind": flavor_kind(f), **f} for f in flavors],
        "images": [i for i in api.get(f"{IMAGE}/images")["images"] if i.get("status") == "active"],
        "networks": api.get(f"{NETWORK}/networks")["networks"],
        "keypairs": [k["keypair"] for k in api.get(f"{COMPUTE}/os-keypairs")["keypairs"]],
        "groups": api.get(f"{COMPUTE}/os-server-groups")["server_groups"],
    }


def create_server(api: API, form: dict[str, str]) -> str:
    """POST /servers from the create form; the new server's id."""
    body: dict[str, Any] = {
        "name": form.get("name", ""),
        "flavorRef": form.get("flavor", ""),
        "imageRef": form.get("image", ""),
        "networks": [{"uuid": form["network"]}] if form.get("network") else "auto",
    }
    if form.get("key_name"):
        body["key_name"] = form["key_name"]
    if form.get("user_data"):
        body["user_data"] = base64.b64encode(form["user_data"].encode()).decode()
    request: dict[str, Any] = {"server": body}
    if form.get("group"):
        request["os:scheduler_hints"] = {"group": form["group"]}
    return str(api.post(f"{COMPUTE}/servers", request)["server"]["id"])


def networks(api: API) -> dict[str, Any]:
    subnets: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for subnet in api.get(f"{NETWORK}/subnets")["subnets"]:
        subnets[subnet["network_id"]].append(subnet)
    nets = api.get(f"{NETWORK}/networks")["networks"]
    for net in nets:
        net["subnet_list"] = subnets.get(net["id"], [])
    return {"networks": nets, "security_groups": api.get(f"{NETWORK}/security-groups")["security_groups"]}


def create_network(api: API, form: dict[str, str]) -> None:
    """A network, and a subnet on it when the form names a CIDR."""
    net = api.post(f"{NETWORK}/networks", {"network": {"name": form.get("name", "")}})["network"]
    if form.get("cidr"):
        subnet = {
            "network_id": net["id"],
            "cidr": form["cidr"],
            "ip_version": 4,
            "name": form.get("name", ""),
        }
        try:
            api.post(f"{NETWORK}/subnets", {"subnet": subnet})
        except APIError:
            api.delete(f"{NETWORK}/networks/{q(net['id'])}")  # no half-made network left behind
            raise


def form_number(text: str) -> int | str:
    """A form's number field for a JSON body: plain digits as an integer, anything else as the
    user typed it, so that the API's own message says what is wrong with it."""
    return int(text) if text.isascii() and text.isdigit() else text


def add_rule(api: API, group_id: str, form: dict[str, str]) -> None:
    """An ingress rule: protocol (empty: any), a port range (a single port when only the first
    is given) and a remote CIDR (empty: anywhere)."""
    rule: dict[str, Any] = {"security_group_id": group_id, "direction": "ingress", "ethertype": "IPv4"}
    if form.get("protocol"):
        rule["protocol"] = form["protocol"]
    if form.get("port_min"):
        rule["port_range_min"] = form_number(form["port_min"])
        rule["port_range_max"] = form_number(form.get("port_max") or form["port_min"])
    if form.get("remote_ip_prefix"):
        rule["remote_ip_prefix"] = form["remote_ip_prefix"]
    api.post(f"{NETWORK}/security-group-rules", {"security_group_rule": rule})


def delete_rule(api: API, rule_id: str) -> None:
    api.delete(f"{NETWORK}/security-group-rules/{q(rule_id)}")


def delete_network(api: API, network_id: str) -> None:
    api.delete(f"{NETWORK}/networks/{q(network_id)}")


def images(api: API) -> list[dict[str, Any]]:
    return list(api.get(f"{IMAGE}/images")["images"])


def image(api: API, image_id: str) -> dict[str, Any]:
    return dict(api.get(f"{IMAGE}/images/{q(image_id)}"))


def create_image(api: API, form: dict[str, str]) -> str:
    """An image record (queued); its data follows by `client.API.upload`."""
    body = {
        "name": form.get("name", ""),
        "disk_format": form.get("disk_format") or "raw",
        "container_format": "bare",
        "visibility": "private",
    }
    return str(api.post(f"{IMAGE}/images", body)["id"])


def delete_image(api: API, image_id: str) -> None:
    api.delete(f"{IMAGE}/images/{q(image_id)}")


def keypairs(api: API) -> list[dict[str, Any]]:
    return [k["keypair"] for k in api.get(f"{COMPUTE}/os-keypairs")["keypairs"]]


def create_keypair(api: API, form: dict[str, str]) -> dict[str, Any]:
    """Import the form's public key, or have one generated: the page's data, with the generated
    private key (to be shown once, never stored) or ""."""
    body: dict[str, Any] = {"name": form.get("name", "")}
    if form.get("public_key", "").strip():
        body["public_key"] = form["public_key"].strip()
    created = api.post(f"{COMPUTE}/os-keypairs", {"keypair": body})["keypair"]
    return {"keypairs": keypairs(api), "private_key": str(created.get("private_key") or "")}


def delete_keypair(api: API, name: str) -> None:
    api.delete(f"{COMPUTE}/os-keypairs/{q(name)}")


def server_groups(api: API) -> list[dict[str, Any]]:
    return list(api.get(f"{COMPUTE}/os-server-groups")["server_groups"])


def create_server_group(api: API, form: dict[str, str]) -> None:
    """A group; a failure domain other than the host (Nova's own, the default) goes as kumo's
    `failure_domain` rule (the API refuses rules with the affinity policies, in its words)."""
    group: dict[str, Any] = {"name": form.get("name", ""), "policy": form.get("policy", "")}
    domain = form.get("failure_domain") or "host"
    if domain != "host":
        group["rules"] = {"failure_domain": domain}
    api.post(f"{COMPUTE}/os-server-groups", {"server_group": group})


def delete_server_group(api: API, group_id: str) -> None:
    api.delete(f"{COMPUTE}/os-server-groups/{q(group_id)}")


@dataclass
class QuotaRow:
    name: str
    used: int
    limit: int

    @property
    def percent(self) -> int:
        """Share of the limit in use, 0-100 (an unlimited quota, -1, shows 0)."""
        return min(100, round(100 * self.used / self.limit)) if self.limit > 0 else 0


QUOTAS = (
    ("Instances", "totalInstancesUsed", "maxTotalInstances"),
    ("vCPUs", "totalCoresUsed", "maxTotalCores"),
    ("RAM (MiB)", "totalRAMUsed", "maxTotalRAMSize"),
    ("Server groups", "totalServerGroupsUsed", "maxServerGroups"),
)


USAGE_DAYS = 30


def usage_period(now: dt.datetime, days: int = USAGE_DAYS) -> dict[str, str]:
    """The `start`/`end` query of os-simple-tenant-usage for the `days` up to `now` (naive UTC)."""
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {"start": (now - dt.timedelta(days=days)).strftime(fmt), "end": now.strftime(fmt)}


def quotas(api: API, project_id: str) -> dict[str, Any]:
    """The project's limits and what it uses of them, and its server usage of the last days."""
    absolute = api.get(f"{COMPUTE}/limits")["limits"]["absolute"]
    rows = [
        QuotaRow(label, int(absolute.get(used, 0)), int(absolute.get(limit, -1)))
        for label, used, limit in QUOTAS
    ]
    period = usage_period(dt.datetime.now(dt.UTC).replace(tzinfo=None))
    usage = api.get(f"{COMPUTE}/os-simple-tenant-usage/{q(project_id)}", **period)["tenant_usage"]
    return {"quotas": rows, "usage": usage, "usage_days": USAGE_DAYS}


def stock_requests(api: API, all_projects: bool = False) -> list[dict[str, Any]]:
    """Newest first, each with its flavor's name (`flavor_name`) and, for every project's (an
    operator's list), its project's (`project_name`); the id when the name is not listed."""
    params = {"all_projects": "1"} if all_projects else {}
    found = api.get(f"{COMPUTE}/os-kumo-stock-requests", **params)["stock_requests"]
    flavor_names = {f["id"]: f["name"] for f in flavors(api)}
    project_names = (
        {p["id"]: p["name"] for p in api.get("/identity/v3/projects")["projects"]} if all_projects else {}
    )
    for row in found:
        row["flavor_name"] = flavor_names.get(row["flavor_id"], row["flavor_id"])
        row["project_name"] = project_names.get(row["project_id"], row["project_id"])
    return sorted(found, key=lambda r: r.get("created_at") or "", reverse=True)


def stock_aggregates(api: API) -> list[dict[str, Any]]:
    """The stock aggregates (those that hold machines for one flavor: `filter_flavor_id`), each
    with its flavor's name and, for a project's private stock (`filter_tenant_id`), the
    project's; public stock first, then by name."""
    flavor_names = {f["id"]: f["name"] for f in flavors(api)}
    project_names = {p["id"]: p["name"] for p in api.get("/identity/v3/projects")["projects"]}
    found = []
    for agg in api.get(f"{COMPUTE}/os-aggregates")["aggregates"]:
        meta = agg.get("metadata") or {}
        if "filter_flavor_id" not in meta:
            continue
        tenant = meta.get("filter_tenant_id")
        found.append(
            {
                "name": agg["name"],
                "flavor": flavor_names.get(meta["filter_flavor_id"], meta["filter_flavor_id"]),
                "project": project_names.get(tenant, tenant) if tenant else "",
                "hosts": sorted(agg.get("hosts") or []),
            }
        )
    return sorted(found, key=lambda a: (a["project"] != "", a["name"]))


def flavors(api: API) -> list[dict[str, Any]]:
    return list(api.get(f"{COMPUTE}/flavors/detail")["flavors"])


def create_stock_request(api: API, form: dict[str, str]) -> None:
    count = form_number(form.get("count", ""))
    body = {"flavor": form.get("flavor", ""), "count": count, "reason": form.get("reason", "")}
    api.post(f"{COMPUTE}/os-kumo-stock-requests", {"stock_request": body})


def decide_stock_request(api: API, request_id: str, decision: str, reason: str) -> None:
    body: dict[str, Any] = {"approve": None} if decision == "approve" else {"reject": {"reason": reason}}
    api.post(f"{COMPUTE}/os-kumo-stock-requests/{q(request_id)}/action", body)


def switch_project(api: API, project_id: str) -> Token:
    """A token of the same user for `project_id`; the old one is revoked (it is of no further
    use). A refused re-scope leaves the old token as it was."""
    token = api.rescope(project_id)
    try:
        api.revoke()
    except APIError:
        pass  # expired meanwhile: nothing left to revoke
    return token


def projects(api: API) -> list[dict[str, Any]]:
    """The projects the signed-in user may switch to."""
    return list(api.get("/identity/v3/auth/projects")["projects"])


@dataclass
class Machine:
    """A hypervisor or a baremetal node, placed in its failure domains."""

    name: str
    kind: str
    region: str
    zone: str
    rack: str
    state: str
    power: str
    maintenance: bool
    detail: str
    vcpus_used: int = 0
    vcpus: int = 0
    memory_mb_used: int = 0
    memory_mb: int = 0
    service_id: str = ""  # a hypervisor's compute service (os-services, by uuid)
    node_id: str = ""  # a baremetal node's uuid
    reason: str = ""  # why it is disabled or in maintenance
    target_power: str = ""  # a node's power change under way


def fleet(api: API) -> list[Machine]:
    """Every hypervisor (with its labels) and baremetal node, sorted by region, AZ, rack, name."""
    labels = {h["host"]: h for h in api.get(f"{COMPUTE}/os-kumo-host-labels")["host_labels"]}
    machines: list[Machine] = []
    for hv in api.get(f"{COMPUTE}/os-hypervisors/detail")["hypervisors"]:
        label = labels.get(hv["hypervisor_hostname"], {})
        service = hv.get("service") or {}
        machines.append(
            Machine(
                name=hv["hypervisor_hostname"],
                kind=f"hypervisor ({hv.get('hypervisor_type', '')})",
                region=label.get("region") or "",
                zone=label.get("availability_zone") or "",
                rack=label.get("rack") or "",
                state=f"{hv['state']} / {hv['status']}",
                power="",  # a hypervisor reports no power state of its own: its state says it
                maintenance=hv["status"] == "disabled",
                detail=(
                    f"{hv['vcpus_used']}/{hv['vcpus']} vCPU, {hv['memory_mb_used']}/{hv['memory_mb']} MiB, "
                    f"{hv.get('running_vms', 0)} servers"
                ),
                vcpus_used=int(hv["vcpus_used"]),
                vcpus=int(hv["vcpus"]),
                memory_mb_used=int(hv["memory_mb_used"]),
                memory_mb=int(hv["memory_mb"]),
                service_id=str(service.get("id") or ""),
                reason=str(service.get("disabled_reason") or ""),
            )
        )
    for node in api.call("GET", f"{BAREMETAL}/nodes/detail", headers=IRONIC_VERSION)["nodes"]:
        props = node.get("properties") or {}
        machines.append(
            Machine(
                name=node.get("name") or node["uuid"],
                kind=f"baremetal ({node.get('resource_class') or ''})",
                region=str(props.get("region") or ""),
                zone=str(props.get("availability_zone") or ""),
                rack=str(props.get("rack") or ""),
                state=str(node.get("provision_state") or ""),
                power=str(node.get("power_state") or ""),
                maintenance=bool(node.get("maintenance")),
                detail="in use" if node.get("instance_uuid") else "free",
                node_id=str(node["uuid"]),
                reason=str(node.get("maintenance_reason") or ""),
                target_power=str(node.get("target_power_state") or ""),
            )
        )
    return sorted(machines, key=lambda m: (m.region, m.zone, m.rack, m.name))


def set_service(api: API, service_id: str, enable: bool, reason: str) -> None:
    """Enable a compute service, or disable it with a reason (os-services PUT by uuid, 2.53+)."""
    body: dict[str, Any] = {"status": "enabled" if enable else "disabled"}
    if not enable and reason:
        body["disabled_reason"] = reason
    api.put(f"{COMPUTE}/os-services/{q(service_id)}", body)


def set_node_maintenance(api: API, node_id: str, on: bool, reason: str) -> None:
    """Ironic's maintenance mode: PUT (with the reason) puts a node in it, DELETE takes it out."""
    path = f"{BAREMETAL}/nodes/{q(node_id)}/maintenance"
    if on:
        api.put(path, {"reason": reason} if reason else None, headers=IRONIC_VERSION)
    else:
        api.delete(path, headers=IRONIC_VERSION)


POWER_TARGETS = {"on": "power on", "off": "power off"}


def set_node_power(api: API, node_id: str, target: str) -> None:
    """Ironic's power change (`power on` / `power off`); its conductor carries it out."""
    if target not in POWER_TARGETS:
        raise APIError(400, f"Unknown power target: {target}")
    body = {"target": POWER_TARGETS[target]}
    api.put(f"{BAREMETAL}/nodes/{q(node_id)}/states/power", body, headers=IRONIC_VERSION)


def scrape(api: API) -> exposition.Scrape:
    """What the charts read from kumo's /metrics (the answering API worker's registry)."""
    return exposition.parse(api.text("/metrics"))


# -- canaries ------------------------------------------------------------------------------------

# A host's canary verdict as the page says it (kumo/canary/policy.py's verdicts and effects).
VERDICTS = {
    "healthy": "healthy",
    "suspect": "suspect (down-weighted)",
    "failing": "failing (disabled, reason canary)",
}


def canaries(api: API) -> dict[str, Any]:
    """The newest run of each (scope, target) with its steps, and every host's standing."""
    found = api.get(f"{COMPUTE}/os-kumo-canaries", latest="true")
    runs = sorted(found["canaries"], key=lambda r: (r["scope"], r["target"] or ""))
    hosts = []
    for h in found["hosts"]:
        verdict = str(h.get("verdict") or "")
        hosts.append({**h, "verdict_text": VERDICTS.get(verdict, verdict)})
    return {"runs": runs, "hosts": sorted(hosts, key=lambda h: h["host"])}


# -- the rebalancer (Watcher's API) -------------------------------------------------------------


def _move(action: dict[str, Any]) -> dict[str, Any]:
    """An action of a plan as the review shows it: which server, from where to where, why, and the
    effect the planner predicted."""
    p = action.get("input_parameters") or {}
    victims = p.get("victims") or []
    return {
        "id": action["uuid"],
        "state": action["state"],
        "server": p.get("resource_id", ""),
        "source": p.get("source_node", ""),
        "destination": p.get("destination_node", ""),
        "reason": (
            f"{p.get('steal_pct', 0)} % steal; victims on the source: {', '.join(victims)}"
            if victims
            else f"{p.get('steal_pct', 0)} % steal"
        ),
        "effect": (
            f"source loses {p.get('gain_cores', 0)} fewer stolen cores; destination demand "
            f"{p.get('demand_cores', 0)} cores; about {p.get('est_seconds', 0)} s to migrate"
        ),
        "status_message": action.get("status_message") or "",
    }


def _efficacy(plan: dict[str, Any], name: str) -> Any:
    indicators = plan.get("efficacy_indicators") or []
    return next((e.get("value") for e in indicators if e.get("name") == name), None)


def rebalancer(api: API) -> dict[str, Any]:
    """Audits (newest first) and action plans (newest first) with their actions and what each
    left in place (kumo's `skipped`)."""
    audits = api.call("GET", f"{WATCHER}/audits/detail", headers=WATCHER_VERSION)["audits"]
    plans = api.call("GET", f"{WATCHER}/action_plans/detail", headers=WATCHER_VERSION)["action_plans"]
    actions = api.call("GET", f"{WATCHER}/actions/detail", headers=WATCHER_VERSION)["actions"]
    by_plan: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for action in actions:
        by_plan[action["action_plan_uuid"]].append(_move(action))
    names = {a["uuid"]: a.get("name") or a["uuid"] for a in audits}
    for plan in plans:
        plan["audit_name"] = names.get(plan["audit_uuid"], plan["audit_uuid"])
        plan["moves"] = by_plan.get(plan["uuid"], [])
        plan["lost_before"] = _efficacy(plan, "lost_cores_before")
        plan["lost_after"] = _efficacy(plan, "lost_cores_after")
        plan["reduction"] = next((g.get("value") for g in plan.get("global_efficacy") or []), None)
    newest = sorted(plans, key=lambda p: p.get("created_at") or "", reverse=True)
    return {"audits": sorted(audits, key=lambda a: a.get("created_at") or "", reverse=True), "plans": newest}


def decide_plan(api: API, plan_id: str, decision: str, seen_state: str = "") -> None:
    """Start a RECOMMENDED plan, or cancel one (Watcher's JSON patch of its state: CANCELLING for
    a plan the page showed ONGOING, whose running actions finish first; CANCELLED otherwise)."""
    path = f"{WATCHER}/action_plans/{q(plan_id)}"
    if decision == "start":
        api.post(f"{path}/start", headers=WATCHER_VERSION)
    elif decision == "cancel":
        value = "CANCELLING" if seen_state == "ONGOING" else "CANCELLED"
        patch = [{"op": "replace", "path": "/state", "value": value}]
        api.patch(path, patch, "application/json", headers=WATCHER_VERSION)
    else:
        raise APIError(400, f"Unknown decision: {decision}")
