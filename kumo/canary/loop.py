"""The canary loop: every few seconds it reads the fleet through the public API (os-services,
os-hypervisors, os-kumo-canaries), asks the pure policy which canaries are due
(kumo/canary/policy.py:due) and runs them one after the other, reporting each. It runs as a
service user, `canary` in project `service` with the admin role (made by `ensure_canary_user`
with the admin's credentials), in `kumo canary loop` or in `kumo up --canaries`."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from kumo.canary.policy import CANARY_REASON, CanaryPolicy, HostSeen, Target, due
from kumo.canary.probe import COMPUTE, CanarySpec, Prober

log = logging.getLogger("kumo.canary")

CANARY_USER = "canary"
CANARY_PROJECT = "service"
IDENTITY = "/identity/v3"
NETWORKING = "/networking/v2.0"
KEY_PAIR = "kumo-canary"  # the canary user's key pair: its guests' SSH login
SSH_GROUP = "kumo-canary-ssh"  # its project's security group admitting SSH into its guests
HYPERVISOR_MICROVERSION = {"OpenStack-API-Version": "compute 2.53"}


def login(url: str, user: str, password: str, project: str) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
            },
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }
    }
    resp = httpx.post(f"{url}{IDENTITY}/auth/tokens", json=body, timeout=30)
    resp.raise_for_status()
    return resp.headers["X-Subject-Token"]


def _one(admin: httpx.Client, path: str, key: str, name: str) -> dict[str, Any] | None:
    found = admin.get(f"{IDENTITY}/{path}", params={"name": name}).json()[key]
    return dict(found[0]) if found else None


def ensure_canary_user(admin: httpx.Client, password: str) -> None:
    """Project `service`, user `canary` (its password `password`) and its admin role there,
    made through the identity API where missing."""
    project = _one(admin, "projects", "projects", CANARY_PROJECT)
    if project is None:
        made = admin.post(
            f"{IDENTITY}/projects", json={"project": {"name": CANARY_PROJECT, "domain_id": "default"}}
        )
        made.raise_for_status()
        project = dict(made.json()["project"])
    user = _one(admin, "users", "users", CANARY_USER)
    if user is None:
        body = {"user": {"name": CANARY_USER, "password": password, "domain_id": "default"}}
        made = admin.post(f"{IDENTITY}/users", json=body)
        made.raise_for_status()
        user = dict(made.json()["user"])
    else:
        admin.patch(
            f"{IDENTITY}/users/{user['id']}", json={"user": {"password": password}}
        ).raise_for_status()
    role = _one(admin, "roles", "roles", "admin")
    if role is None:
        raise RuntimeError("no admin role")
    admin.put(f"{IDENTITY}/projects/{project['id']}/users/{user['id']}/roles/{role['id']}").raise_for_status()


def ensure_key_pair(api: httpx.Client, key_dir: Path) -> Path:
    """The canary's key pair `kumo-canary` (the caller's): its private key made once in
    `key_dir` (ssh-keygen, ed25519) and its public key registered, or registered again when the
    one the API holds is another; the private key's path."""
    key = key_dir / "id_ed25519"
    if not key.exists():
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", KEY_PAIR, "-f", str(key)]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    public = key.with_name(key.name + ".pub").read_text().strip()
    held = api.get(f"{COMPUTE}/os-keypairs/{KEY_PAIR}")
    if held.status_code == 200:
        if held.json()["keypair"]["public_key"].split()[:2] == public.split()[:2]:
            return key
        api.delete(f"{COMPUTE}/os-keypairs/{KEY_PAIR}").raise_for_status()
    made = api.post(f"{COMPUTE}/os-keypairs", json={"keypair": {"name": KEY_PAIR, "public_key": public}})
    made.raise_for_status()
    return key


def ensure_ssh_group(api: httpx.Client) -> str:
    """The caller's project's security group `kumo-canary-ssh` (ingress TCP 22 from anywhere,
    Neutron's egress defaults), made where missing; its id."""
    me = api.get(f"{IDENTITY}/auth/tokens", headers={"X-Subject-Token": str(api.headers["X-Auth-Token"])})
    me.raise_for_status()
    project = str(me.json()["token"]["project"]["id"])
    params = {"name": SSH_GROUP, "project_id": project}
    found = api.get(f"{NETWORKING}/security-groups", params=params).json()["security_groups"]
    if found:
        return str(found[0]["id"])
    body = {"security_group": {"name": SSH_GROUP, "description": "kumo canaries: SSH into their guests"}}
    made = api.post(f"{NETWORKING}/security-groups", json=body)
    made.raise_for_status()
    group = str(made.json()["security_group"]["id"])
    rule = {
        "security_group_id": group,
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": "tcp",
        "port_range_min": 22,
        "port_range_max": 22,
    }
    api.post(f"{NETWORKING}/security-group-rules", json={"security_group_rule": rule}).raise_for_status()
    return group


def resolve_spec(
    api: httpx.Client, image: str, flavor: str, network: str | None = None, key_dir: Path | None = None
) -> CanarySpec:
    """The canary's image and flavor (by name or id) and its network (by name or id, optional);
    with a network and `key_dir`, its key pair and SSH security group (made where missing)."""
    images = api.get("/image/v2/images", params={"name": image}).json()["images"]
    image_id = str(images[0]["id"]) if images else image
    flavors = api.get(f"{COMPUTE}/flavors").json()["flavors"]
    flavor_id = next((str(f["id"]) for f in flavors if flavor in (f["name"], f["id"])), flavor)
    network_id = None
    if network:
        nets = api.get("/networking/v2.0/networks", params={"name": network}).json()["networks"]
        network_id = str(nets[0]["id"]) if nets else network
    if network_id is None or key_dir is None:
        return CanarySpec(image=image_id, flavor=flavor_id, network=network_id)
    key = ensure_key_pair(api, key_dir)
    return CanarySpec(image_id, flavor_id, network_id, KEY_PAIR, key, ensure_ssh_group(api))


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def observe(
    api: httpx.Client,
) -> tuple[list[str], list[str], list[HostSeen], dict[tuple[str, str], dt.datetime]]:
    """The zones with a usable hypervisor, those with two (a live migration's), the hypervisors
    as the canaries see them, and when each (scope, target) last had a canary."""
    services = api.get(f"{COMPUTE}/os-services", params={"binary": "nova-compute"}).json()["services"]
    kinds = {
        h["service"]["host"]: h.get("hypervisor_type")
        for h in api.get(f"{COMPUTE}/os-hypervisors/detail", headers=HYPERVISOR_MICROVERSION).json()[
            "hypervisors"
        ]
    }
    overview = api.get(f"{COMPUTE}/os-kumo-canaries", params={"latest": "true"}).json()
    failures = {h["host"]: int(h["consecutive_failures"]) for h in overview["hosts"]}
    last_run: dict[tuple[str, str], dt.datetime] = {}
    for run in overview["canaries"]:  # each (scope, target)'s newest, newest first
        last_run.setdefault((run["scope"], run["target"]), _time(run["finished_at"]))
    hosts = []
    zones: dict[str, int] = {}
    for service in services:
        if kinds.get(service["host"]) == "ironic":
            continue  # a baremetal node takes no tiny server
        up = service["state"] == "up"
        disabled = service["status"] == "disabled"
        ours = disabled and service.get("disabled_reason") == CANARY_REASON
        hosts.append(
            HostSeen(
                service["host"],
                service["zone"],
                up,
                failures.get(service["host"], 0),
                ours,
                disabled_by_operator=disabled and not ours,
            )
        )
        if up and service["status"] == "enabled":
            zones[service["zone"]] = zones.get(service["zone"], 0) + 1
    return sorted(zones), sorted(z for z, n in zones.items() if n >= 2), hosts, last_run


class CanaryLoop:
    """Runs the due canaries every `tick` seconds, in a thread of its own."""

    def __init__(
        self,
        url: str,
        token: Callable[[], str],
        spec: Callable[[httpx.Client], CanarySpec],
        policy: CanaryPolicy,
        tick: float = 5.0,
    ) -> None:
        self.url = url
        self.token = token
        self.spec = spec
        self.policy = policy
        self.tick = tick
        self.was_up: dict[str, bool] = {}
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.reports: list[dict[str, Any]] = []  # this process's, newest last (bounded)

    def pass_once(self) -> list[dict[str, Any]]:
        """Run every canary due now; the stored runs."""
        with httpx.Client(base_url=self.url, headers={"X-Auth-Token": self.token()}, timeout=60) as api:
            zones, pairs, hosts, last_run = observe(api)
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            targets = due(now, zones, hosts, last_run, self.was_up, self.policy, pairs)
            self.was_up = {h.name: h.up for h in hosts}
            zone_of = {h.name: h.zone for h in hosts}
            done: list[dict[str, Any]] = []
            if not targets:
                return done
            prober = Prober(api, self.spec(api))  # its image, flavor, network, key pair: when due
            for target in targets:
                if self.stop_event.is_set():
                    break
                done.append(self.run_one(prober, target, zone_of.get(target.name)))
        return done

    def run_one(self, prober: Prober, target: Target, zone: str | None) -> dict[str, Any]:
        report = prober.run(target.scope, target.name, zone)
        stored = prober.report(report)
        level = logging.INFO if stored["ok"] else logging.WARNING
        log.log(
            level,
            "canary %s %s (%s): %s%s [request %s]",
            target.scope,
            target.name,
            target.why,
            "passed" if stored["ok"] else f"failed at {stored['failed_step']}: {stored['error']}",
            f"; host {stored['host']} {stored['verdict']}" if stored.get("verdict") else "",
            next(
                (s["request_id"] for s in stored["steps"] if s["step"] == stored["failed_step"]),
                stored["request_id"],
            ),
        )
        self.reports = [*self.reports[-99:], stored]
        return stored

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.pass_once()
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                log.error("canary pass failed: %s", exc)
            self.stop_event.wait(self.tick)

    def start(self) -> CanaryLoop:
        self.thread = threading.Thread(target=self.run, name="canary-loop", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout)
