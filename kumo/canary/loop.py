"""The canary loop: every few seconds it reads the fleet through the public API (os-services,
os-hypervisors, os-kumo-canaries), asks the pure policy which canaries are due
(kumo/canary/policy.py:due) and runs them one after the other, reporting each. It runs as a
service user, `canary` in project `service` with the admin role (made by `ensure_canary_user`
with the admin's credentials), in `kumo canary loop` or in `kumo up --canaries`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kumo.canary.policy import CANARY_REASON, CanaryPolicy, HostSeen, Target, due
from kumo.canary.probe import COMPUTE, HYPERVISORS, NETWORKING, CanarySpec, Prober
from kumo.canary.ssh import unusable_reason

log = logging.getLogger("kumo.canary")

CANARY_USER = "canary"
CANARY_PROJECT = "service"
IDENTITY = "/identity/v3"
KEY_PAIR = "kumo-canary"  # the canary user's key pair: its guests' SSH login
SSH_GROUP = "kumo-canary-ssh"  # its project's security group admitting SSH into its guests
KEY_TIMEOUT = 60  # seconds for ssh-keygen


class KeyPairFailed(Exception):
    """The canary's key pair could not be prepared (no ssh-keygen, no permission, …)."""


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


def _keygen(argv: list[str]) -> str:
    """ssh-keygen's standard output; KeyPairFailed, saying why, when it cannot run or fails."""
    try:
        done = subprocess.run(
            argv, capture_output=True, stdin=subprocess.DEVNULL, text=True, timeout=KEY_TIMEOUT, check=True
        )
    except subprocess.CalledProcessError as exc:
        raise KeyPairFailed(f"{' '.join(argv[:2])}: {(exc.stderr or '').strip() or exc}") from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise KeyPairFailed(f"{argv[0]}: {exc}") from None
    return done.stdout


def prepare_key(key_dir: Path) -> tuple[Path, str]:
    """The canary's private key in `key_dir` (made once: ssh-keygen, ed25519) and its public
    key (its `.pub`, rebuilt from the private key when missing). Each file is made under a
    temporary name and renamed into place, so a runner never reads a half-written key; two
    runners sharing a directory may still each make a key and register it in turn: give each
    canary user a key directory of its own. KeyPairFailed when it cannot be prepared."""
    key, pub = key_dir / "id_ed25519", key_dir / "id_ed25519.pub"
    try:
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not key.exists():
            scratch = key_dir / f".id_ed25519.{os.getpid()}.tmp"
            for leftover in (scratch, scratch.with_name(scratch.name + ".pub")):
                leftover.unlink(missing_ok=True)
            _keygen(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", KEY_PAIR, "-f", str(scratch)])
            os.replace(scratch.with_name(scratch.name + ".pub"), pub)
            os.replace(scratch, key)
        if not pub.exists():
            scratch = key_dir / f".id_ed25519.pub.{os.getpid()}.tmp"
            scratch.write_text(_keygen(["ssh-keygen", "-y", "-f", str(key)]))
            os.replace(scratch, pub)
        return key, pub.read_text().strip()
    except OSError as exc:
        raise KeyPairFailed(f"the canary's key in {key_dir}: {exc}") from None


def ensure_key_pair(api: httpx.Client, key_dir: Path) -> Path:
    """The canary's key pair `kumo-canary` (the caller's): its private key in `key_dir`
    (`prepare_key`) and its public key registered, or registered again when the one the API
    holds is another; the private key's path."""
    key, public = prepare_key(key_dir)
    held = api.get(f"{COMPUTE}/os-keypairs/{KEY_PAIR}")
    if held.status_code == 200:
        if held.json()["keypair"]["public_key"].split()[:2] == public.split()[:2]:
            return key
        api.delete(f"{COMPUTE}/os-keypairs/{KEY_PAIR}").raise_for_status()
    made = api.post(f"{COMPUTE}/os-keypairs", json={"keypair": {"name": KEY_PAIR, "public_key": public}})
    made.raise_for_status()
    return key


def _admits_ssh(rule: dict[str, Any], prefix: str | None) -> bool:
    return (
        rule.get("direction") == "ingress"
        and rule.get("ethertype") == "IPv4"
        and rule.get("protocol") in ("tcp", "6")
        and (rule.get("port_range_min") or 0) <= 22 <= (rule.get("port_range_max") or 65535)
        and rule.get("remote_ip_prefix") in (prefix, None, "0.0.0.0/0")
        and rule.get("remote_group_id") is None
    )


def ensure_ssh_group(api: httpx.Client, cidrs: list[str] | None = None) -> str:
    """The caller's project's security group `kumo-canary-ssh` admitting TCP 22 (from each of
    `cidrs`, the canary network's IPv4 subnets, else from anywhere; Neutron's egress defaults):
    the group made where missing and, every time, its rules checked and any missing made; its id."""
    me = api.get(f"{IDENTITY}/auth/tokens", headers={"X-Subject-Token": str(api.headers["X-Auth-Token"])})
    me.raise_for_status()
    project = str(me.json()["token"]["project"]["id"])
    params = {"name": SSH_GROUP, "project_id": project}
    found = api.get(f"{NETWORKING}/security-groups", params=params).json()["security_groups"]
    if found:
        group = str(found[0]["id"])
    else:
        body = {"security_group": {"name": SSH_GROUP, "description": "kumo canaries: SSH into their guests"}}
        made = api.post(f"{NETWORKING}/security-groups", json=body)
        made.raise_for_status()
        group = str(made.json()["security_group"]["id"])
    rules = api.get(f"{NETWORKING}/security-group-rules", params={"security_group_id": group})
    rules.raise_for_status()
    held = list(rules.json()["security_group_rules"])
    wanted: list[str | None] = list(cidrs) if cidrs else [None]
    for prefix in wanted:
        if any(_admits_ssh(rule, prefix) for rule in held):
            continue
        rule: dict[str, Any] = {
            "security_group_id": group,
            "direction": "ingress",
            "ethertype": "IPv4",
            "protocol": "tcp",
            "port_range_min": 22,
            "port_range_max": 22,
        }
        if prefix is not None:
            rule["remote_ip_prefix"] = prefix
        made = api.post(f"{NETWORKING}/security-group-rules", json={"security_group_rule": rule})
        made.raise_for_status()
    return group


def _ipv4_cidrs(api: httpx.Client, network_id: str) -> list[str]:
    subnets = api.get(f"{NETWORKING}/subnets", params={"network_id": network_id}).json()["subnets"]
    return [str(s["cidr"]) for s in subnets if s.get("ip_version") == 4 and s.get("cidr")]


def resolve_spec(
    api: httpx.Client, image: str, flavor: str, network: str | None = None, key_dir: Path | None = None
) -> CanarySpec:
    """The canary's image and flavor (by name or id) and its network (by name or id, optional);
    with a network and `key_dir`, its key pair and SSH security group (made where missing), and
    whether this runner can log into guests there (`ssh_skipped` says why not: a warning
    logged, the ssh step skipped). KeyPairFailed when the key cannot be prepared."""
    images = api.get("/image/v2/images", params={"name": image}).json()["images"]
    image_id = str(images[0]["id"]) if images else image
    flavors = api.get(f"{COMPUTE}/flavors").json()["flavors"]
    flavor_id = next((str(f["id"]) for f in flavors if flavor in (f["name"], f["id"])), flavor)
    network_id = None
    if network:
        nets = api.get(f"{NETWORKING}/networks", params={"name": network}).json()["networks"]
        network_id = str(nets[0]["id"]) if nets else network
    if network_id is None or key_dir is None:
        return CanarySpec(image=image_id, flavor=flavor_id, network=network_id)
    key = ensure_key_pair(api, key_dir)
    cidrs = _ipv4_cidrs(api, network_id)
    # any address of its subnet: whether this runner has a route there
    address = str(ipaddress.IPv4Network(cidrs[0], strict=False).network_address + 1) if cidrs else None
    unusable = unusable_reason(network_id, address)
    if unusable is not None:
        log.warning("canaries will not log into their guests on %s: %s", network_id, unusable)
    group = ensure_ssh_group(api, cidrs)
    return CanarySpec(image_id, flavor_id, network_id, KEY_PAIR, key, group, ssh_skipped=unusable)


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


@dataclass(frozen=True)
class Fleet:
    """The fleet as one pass of the loop reads it."""

    zones: list[str]  # with a usable hypervisor
    pairs: list[str]  # with two (a live migration's)
    hosts: list[HostSeen]  # the hypervisors as the canaries see them
    last_run: dict[tuple[str, str], dt.datetime]  # when each (scope, target) last had a canary
    kinds: dict[str, str | None]  # each host's hypervisor_type (os-hypervisors)


def observe(api: httpx.Client) -> Fleet:
    """The fleet as the canaries see it (`Fleet`), from os-services, os-hypervisors and
    os-kumo-canaries."""
    services = api.get(f"{COMPUTE}/os-services", params={"binary": "nova-compute"}).json()["services"]
    kinds = {
        h["service"]["host"]: h.get("hypervisor_type")
        for h in api.get(f"{COMPUTE}/os-hypervisors/detail", headers=HYPERVISORS).json()["hypervisors"]
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
    return Fleet(sorted(zones), sorted(z for z, n in zones.items() if n >= 2), hosts, last_run, kinds)


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
            fleet = observe(api)
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            targets = due(
                now, fleet.zones, fleet.hosts, fleet.last_run, self.was_up, self.policy, fleet.pairs
            )
            self.was_up = {h.name: h.up for h in fleet.hosts}
            zone_of = {h.name: h.zone for h in fleet.hosts}
            done: list[dict[str, Any]] = []
            if not targets:
                return done
            # its image, flavor, network, key pair: only when a canary is due
            prober = Prober(api, self.spec(api), hypervisor_types=fleet.kinds)
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
            except (
                httpx.HTTPError,
                KeyError,
                ValueError,
                KeyPairFailed,
                OSError,
                subprocess.SubprocessError,
            ) as exc:
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
