"""One canary, through kumo's public API as any client would: a tiny server booted in a zone (or
forced onto a host, `zone:host`), checked, stopped and deleted, then nothing of it left; the
result reported to os-kumo-canaries. Its steps, in order:

    create    POST /servers (the test image, the canary flavor, forced into the zone or host)
    active    the server ACTIVE (ERROR: its fault is the failure)
    console   the test image's boot line on its console (os-getConsoleOutput), matching the
              flavor: `vcpus=` the flavor's, `mem_kb=` at most its RAM and at least half of it
    network   with a tenant network: an address on it, the one the guest's DHCP got (`ip=`)
    metadata  with a tenant network: the guest read its own metadata from 169.254.169.254 (the
              test image's `KUMO-MD` console line: `source=metadata` unless the server has a
              config drive, the server's uuid and hostname, and with the canary's key pair, a
              public key)
    ssh       with a tenant network, the canary's key pair and its private key here: a login
              at the guest's address (kumo/canary/ssh.py says from where), `hostname` answering
              the server's; skipped when the guest says it runs no SSH server (`ssh=off`) on a
              fake hypervisor, or when this runner cannot log in (the spec says why)
    migrate   (a zone's live-migration canary) os-migrateLive to a host the scheduler picks, the
              server ACTIVE on another host, its console answered there
    stop      os-stop, the server SHUTOFF
    delete    DELETE, the server gone
    leftovers no allocation of the server in placement, no port of it

Each step records the request id it sent (a server action's is its instance action's:
GET /servers/{id}/os-instance-actions/{request_id}). A failed step ends the canary; the server
is then deleted all the same (step `cleanup`).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kumo.canary.policy import HOST, MIGRATION
from kumo.canary.ssh import GuestShell, LoginFailed, RunnerFailed, SystemSsh
from kumo.metadata.bundle import DHCP_DOMAIN

MARKER = "KUMO-BOOT-OK"
COMPUTE = "/compute/v2.1"
NETWORKING = "/networking/v2.0"
MICROVERSION = {"OpenStack-API-Version": "compute 2.37"}
LIVE_MIGRATION = {"OpenStack-API-Version": "compute 2.30"}  # host null: the scheduler picks
HYPERVISORS = {"OpenStack-API-Version": "compute 2.53"}  # hypervisor_hostname_pattern with details
REQUEST_ID = "x-openstack-request-id"
_BOOT = re.compile(r"KUMO-BOOT-OK \S+ vcpus=(\d+) mem_kb=(\d+)(?:.* ip=(\S+))?(?:.* ssh=(\S+))?")
# What the guest read from its metadata (config-2 drive or 169.254.169.254), printed before its
# boot line (scripts/build-test-image).
_METADATA = re.compile(r"KUMO-MD source=(\S*) uuid=(\S*) hostname=(\S*) keys=(\d+)")
FAKE_HYPERVISOR = "fake"  # os-hypervisors' hypervisor_type of the fake driver's hosts


class StepFailed(Exception):
    pass


class RunnerStepFailed(StepFailed):
    """A step failed for the runner's own reason: reported without a host (no verdict)."""


@dataclass(frozen=True)
class CanarySpec:
    image: str  # id
    flavor: str  # id
    network: str | None = None  # a tenant network's id: the DHCP and metadata checks
    key_name: str | None = None  # the canary's key pair (with a network: the SSH check) …
    key_file: Path | None = None  # … and its private key
    security_group: str | None = None  # a group of the canary's that admits SSH (its id)
    ssh_skipped: str | None = None  # why this runner does not log in (kumo/canary/ssh.py)
    timeout: float = 180.0  # per waiting step
    poll: float = 0.2


@dataclass(frozen=True)
class BootLine:
    vcpus: int
    mem_kb: int
    ip: str | None
    ssh: str | None = None  # "up" (its SSH server listens), "off", or None (an older image)


@dataclass(frozen=True)
class MetadataLine:
    """The test image's `KUMO-MD source=… uuid=… hostname=… keys=…`: what it read."""

    source: str  # "metadata" (169.254.169.254) or "config-2" (a config drive)
    uuid: str
    hostname: str  # the metadata's: the server's hostname and the DHCP domain (Nova's)
    keys: int  # the public keys it wrote to root's authorized_keys


def _last_whole(console: str, pattern: re.Pattern[str]) -> re.Match[str] | None:
    found = None
    for line in console.splitlines(keepends=True):
        if line.endswith("\n") and (match := pattern.search(line)):
            found = match
    return found


def parse_boot_line(console: str) -> BootLine | None:
    """The last whole boot line of the test image on a console, or None."""
    found = _last_whole(console, _BOOT)
    if found is None:
        return None
    ip = found.group(3)
    return BootLine(
        int(found.group(1)), int(found.group(2)), None if ip in (None, "none") else ip, found.group(4)
    )


def parse_metadata_line(console: str) -> MetadataLine | None:
    """The last whole metadata line of the test image on a console, or None (it read none)."""
    found = _last_whole(console, _METADATA)
    if found is None:
        return None
    return MetadataLine(found.group(1), found.group(2), found.group(3), int(found.group(4)))


def check_metadata(
    line: MetadataLine | None, server_id: str, hostname: str, keys: bool, config_drive: bool = False
) -> str | None:
    """Why what the guest read is not its own metadata, or None when it is: read from the
    metadata service (a config drive only when the server has one), its uuid the server's, its
    hostname the server's (alone or with the DHCP domain) and, when the server has a key pair
    (`keys`), a public key."""
    if line is None:
        return "the guest printed no KUMO-MD line: it read no metadata"
    if line.source != "metadata" and not (config_drive and line.source == "config-2"):
        return f"the guest read its metadata from {line.source or '(nothing)'}, not from the metadata service"
    if line.uuid != server_id:
        return f"the guest read the metadata of {line.uuid or 'no uuid'}, not of {server_id}"
    if line.hostname not in (hostname, f"{hostname}.{DHCP_DOMAIN}"):
        return f"the guest read the hostname {line.hostname or '(none)'}, the server's is {hostname}"
    if keys and line.keys < 1:
        return "the guest read no public key from its metadata"
    return None


def check_boot_line(line: BootLine, vcpus: int, ram_mb: int) -> str | None:
    """Why the boot line does not match the flavor, or None when it does."""
    if line.vcpus != vcpus:
        return f"the guest has {line.vcpus} vCPUs, the flavor {vcpus}"
    ram_kb = ram_mb * 1024
    if not ram_kb // 2 <= line.mem_kb <= ram_kb:
        return f"the guest has {line.mem_kb} kB of memory, the flavor {ram_kb} kB"
    return None


def _utc() -> str:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat()


@dataclass
class _Run:
    scope: str
    target: str
    started_at: str = field(default_factory=_utc)
    steps: list[dict[str, Any]] = field(default_factory=list)
    server_id: str | None = None
    host: str | None = None
    zone: str | None = None
    runner_failed: bool = False  # the failure is the runner's own: no host's verdict

    def report(self, failed: str | None, error: str | None) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "target": self.target,
            "availability_zone": self.zone,
            # a migration's failure is the pair's and the path's, no one host's verdict
            # and a runner's own failure (it cannot log in) none at all
            "host": None if self.scope == MIGRATION or self.runner_failed else self.host,
            "ok": failed is None,
            "failed_step": failed,
            "error": error,
            "steps": self.steps,
            "server_id": self.server_id,
            "started_at": self.started_at,
            "finished_at": _utc(),
        }


class Prober:
    """Runs canaries with `api` (an httpx client at kumo's URL with an admin token)."""

    def __init__(
        self,
        api: httpx.Client,
        spec: CanarySpec,
        clock: Callable[[], float] = time.monotonic,
        shell: GuestShell | None = None,
        hypervisor_types: Mapping[str, str | None] | None = None,
    ) -> None:
        """`hypervisor_types`: each host's os-hypervisors `hypervisor_type`, when the caller
        has read them already (others are asked for)."""
        self.api = api
        self.spec = spec
        self.clock = clock
        self.shell = shell if shell is not None or spec.key_file is None else SystemSsh(spec.key_file)
        self._flavor: dict[str, Any] | None = None
        self._hypervisor_types: dict[str, str | None] = dict(hypervisor_types or {})

    def _call(self, run: _Run, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call of the step running; its request id is the step's: the action's (the last
        POST or DELETE), else the first read's."""
        resp = self.api.request(method, COMPUTE + path if path.startswith("/servers") else path, **kwargs)
        step = run.steps[-1]
        if method != "GET" or step.get("request_id") is None:
            step["request_id"] = resp.headers.get(REQUEST_ID) or step.get("request_id")
        return resp

    def _wait(self, what: str, check: Callable[[], Any]) -> Any:
        deadline = self.clock() + self.spec.timeout
        while True:
            found = check()
            if found:
                return found
            if self.clock() > deadline:
                raise StepFailed(f"{what} within {self.spec.timeout:g} s")
            time.sleep(self.spec.poll)

    def _server(self, run: _Run) -> dict[str, Any] | None:
        resp = self._call(run, "GET", f"/servers/{run.server_id}", headers=MICROVERSION)  # 2.3+: hostname
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return dict(resp.json()["server"])

    def _status(self, run: _Run, wanted: str) -> dict[str, Any] | None:
        server = self._server(run)
        if server is None:
            raise StepFailed("the server disappeared")
        if server["status"] == "ERROR" and wanted != "ERROR":
            fault = (server.get("fault") or {}).get("message") or "no fault"
            run.host = server.get("OS-EXT-SRV-ATTR:host") or run.host
            raise StepFailed(f"the server went to ERROR: {fault}")
        if server["status"] == wanted and server.get("OS-EXT-STS:task_state") is None:
            return server
        return None

    def hypervisor_type(self, host: str) -> str | None:
        """os-hypervisors' `hypervisor_type` of a host (remembered: a host keeps its driver)."""
        if host not in self._hypervisor_types:
            resp = self.api.get(
                f"{COMPUTE}/os-hypervisors/detail",
                params={"hypervisor_hostname_pattern": host},
                headers=HYPERVISORS,
            )
            found = resp.json().get("hypervisors", []) if resp.status_code == 200 else []
            kinds = [h.get("hypervisor_type") for h in found if h.get("hypervisor_hostname") == host]
            if not kinds:
                return None  # not remembered: asked again next time
            self._hypervisor_types[host] = kinds[0]
        return self._hypervisor_types[host]

    def flavor(self) -> dict[str, Any]:
        if self._flavor is None:
            resp = self.api.get(f"{COMPUTE}/flavors/{self.spec.flavor}")
            resp.raise_for_status()
            self._flavor = dict(resp.json()["flavor"])
        return self._flavor

    # -- the steps ------------------------------------------------------------------------------
    def _create(self, run: _Run, zone: str) -> None:
        body = {
            "server": {
                "name": f"kumo-canary-{run.scope}-{run.target}"[:63],
                "flavorRef": self.spec.flavor,
                "imageRef": self.spec.image,
                "availability_zone": zone,
                "networks": [{"uuid": self.spec.network}] if self.spec.network else "none",
                "metadata": {"kumo_canary": run.scope},
            }
        }
        if self.spec.network and self.spec.key_name:
            body["server"]["key_name"] = self.spec.key_name
        if self.spec.network and self.spec.security_group:
            body["server"]["security_groups"] = [{"name": self.spec.security_group}]
        resp = self._call(run, "POST", "/servers", json=body, headers=MICROVERSION)
        if resp.status_code != 202:
            raise StepFailed(f"create answered {resp.status_code}: {resp.text[:300]}")
        run.server_id = str(resp.json()["server"]["id"])

    def _active(self, run: _Run) -> None:
        server = self._wait("the server ACTIVE", lambda: self._status(run, "ACTIVE"))
        run.host = server.get("OS-EXT-SRV-ATTR:host")
        run.zone = server.get("OS-EXT-AZ:availability_zone")

    def _console_output(self, run: _Run) -> str | None:
        resp = self._call(run, "POST", f"/servers/{run.server_id}/action", json={"os-getConsoleOutput": {}})
        return str(resp.json().get("output") or "") if resp.status_code == 200 else None

    def _console(self, run: _Run) -> BootLine:
        def boot_line() -> BootLine | None:
            output = self._console_output(run)
            return None if output is None else parse_boot_line(output)

        line: BootLine = self._wait(f"{MARKER} on the console", boot_line)
        flavor = self.flavor()
        wrong = check_boot_line(line, int(flavor["vcpus"]), int(flavor["ram"]))
        if wrong:
            raise StepFailed(wrong)
        return line

    def _network(self, run: _Run, line: BootLine) -> None:
        server = self._server(run) or {}
        addresses = [a["addr"] for entries in (server.get("addresses") or {}).values() for a in entries]
        if not addresses:
            raise StepFailed("the server has no address on its network")
        if line.ip is None or line.ip.split("/")[0] not in addresses:
            raise StepFailed(f"the guest's DHCP address is {line.ip}, the server's {', '.join(addresses)}")

    def _metadata(self, run: _Run) -> None:
        """What the guest read from 169.254.169.254 (printed before its boot line) is its own."""
        output = self._console_output(run)
        if output is None:
            raise StepFailed("its console did not answer")
        server = self._server(run) or {}
        hostname = str(server.get("OS-EXT-SRV-ATTR:hostname") or "")
        line = parse_metadata_line(output)
        config_drive = server.get("config_drive") in (True, "True", "true", "1")
        wrong = check_metadata(line, str(run.server_id), hostname, bool(self.spec.key_name), config_drive)
        if line is None or wrong:
            raise StepFailed(wrong or "no metadata")
        run.steps[-1]["detail"] = (
            f"source={line.source} uuid={line.uuid} hostname={line.hostname} keys={line.keys}"
        )

    def _ssh(self, run: _Run, line: BootLine) -> None:
        """A login with the canary's key at the guest's DHCP address, `hostname` the server's."""
        if self.spec.ssh_skipped is not None:
            run.steps[-1]["detail"] = f"skipped: this runner cannot log in ({self.spec.ssh_skipped})"
            return
        if line.ssh == "off" and self.hypervisor_type(run.host or "") == FAKE_HYPERVISOR:
            run.steps[-1]["detail"] = "skipped: no real guest (a fake hypervisor)"
            return
        if self.shell is None or self.spec.network is None:
            raise StepFailed("no private key of the canary's key pair on this runner")
        if line.ssh != "up" or line.ip is None:
            raise StepFailed(f"the guest's SSH server is {line.ssh or 'unknown'} (ip={line.ip})")
        server = self._server(run) or {}
        hostname = str(server.get("OS-EXT-SRV-ATTR:hostname") or "")
        address, network, shell = line.ip.split("/")[0], self.spec.network, self.shell
        deadline = self.clock() + self.spec.timeout
        while True:
            try:
                said = shell.run(address, network, "hostname").strip()
                break
            except RunnerFailed as exc:  # retrying will not help, and it is no host's fault
                raise RunnerStepFailed(f"the runner cannot log in: {exc}") from None
            except LoginFailed as exc:  # its firewall or SSH server may be a moment behind
                if self.clock() > deadline:
                    raise StepFailed(str(exc)) from None
                time.sleep(max(self.spec.poll, 1.0))
        if said != hostname:
            raise StepFailed(f"ssh root@{address} answered hostname {said!r}, the server's is {hostname!r}")
        run.steps[-1]["detail"] = f"root@{address} {shell.route(network)}: hostname {said}"

    def _migrate(self, run: _Run) -> None:
        source = run.host
        body = {"os-migrateLive": {"host": None, "block_migration": "auto"}}
        resp = self._call(run, "POST", f"/servers/{run.server_id}/action", json=body, headers=LIVE_MIGRATION)
        if resp.status_code != 202:
            raise StepFailed(f"os-migrateLive answered {resp.status_code}: {resp.text[:300]}")

        def moved() -> dict[str, Any] | None:
            server = self._status(run, "ACTIVE")
            return server if server is not None and server.get("OS-EXT-SRV-ATTR:host") != source else None

        server = self._wait("the server ACTIVE on another host", moved)
        run.host = server.get("OS-EXT-SRV-ATTR:host")
        run.steps[-1]["detail"] = f"{source} → {run.host}"
        answer = self.api.post(  # not the step's request id: that stays the migration's action
            f"{COMPUTE}/servers/{run.server_id}/action", json={"os-getConsoleOutput": {}}
        )
        if answer.status_code != 200:
            raise StepFailed(f"its console on {run.host} answered {answer.status_code}")

    def _stop(self, run: _Run) -> None:
        resp = self._call(run, "POST", f"/servers/{run.server_id}/action", json={"os-stop": None})
        if resp.status_code != 202:
            raise StepFailed(f"os-stop answered {resp.status_code}: {resp.text[:300]}")
        self._wait("the server SHUTOFF", lambda: self._status(run, "SHUTOFF"))

    def _delete(self, run: _Run) -> None:
        resp = self._call(run, "DELETE", f"/servers/{run.server_id}")
        if resp.status_code not in (204, 404):
            raise StepFailed(f"delete answered {resp.status_code}: {resp.text[:300]}")
        self._wait("the server gone", lambda: self._server(run) is None)

    def _leftovers(self, run: _Run) -> None:
        found = []
        allocations = self._call(run, "GET", f"/placement/allocations/{run.server_id}")
        if allocations.status_code == 200 and allocations.json().get("allocations"):
            found.append(f"allocations on {', '.join(allocations.json()['allocations'])}")
        ports = self._call(run, "GET", f"{NETWORKING}/ports", params={"device_id": run.server_id})
        if ports.status_code == 200 and ports.json().get("ports"):
            found.append(f"{len(ports.json()['ports'])} port(s)")
        if found:
            raise StepFailed("left behind: " + "; ".join(found))

    def run(self, scope: str, target: str, zone: str | None = None) -> dict[str, Any]:
        """The canary's report (not yet sent): `scope` AZ or MIGRATION with the zone as
        `target`, or HOST with the host as `target` (and its zone, when known)."""
        run = _Run(scope, target, zone=zone if scope == HOST else target)
        where = f"{zone or ''}:{target}" if scope == HOST else target
        if scope == HOST:
            run.host = target
        line: BootLine | None = None
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("create", lambda: self._create(run, where)),
            ("active", lambda: self._active(run)),
            ("console", lambda: self._console(run)),
        ]
        if self.spec.network:
            steps.append(("network", lambda: self._network(run, line or BootLine(0, 0, None))))
            steps.append(("metadata", lambda: self._metadata(run)))
            if self.spec.key_name and (self.shell is not None or self.spec.ssh_skipped is not None):
                steps.append(("ssh", lambda: self._ssh(run, line or BootLine(0, 0, None))))
        if scope == MIGRATION:
            steps.append(("migrate", lambda: self._migrate(run)))
        steps += [("stop", lambda: self._stop(run)), ("delete", lambda: self._delete(run))]
        steps.append(("leftovers", lambda: self._leftovers(run)))
        for name, step in steps:
            started = self.clock()
            run.steps.append({"step": name, "ok": False, "request_id": None, "seconds": 0.0, "detail": None})
            try:
                result = step()
                if name == "console":
                    line = result
            except (StepFailed, httpx.HTTPError, ValueError, KeyError) as exc:
                error = str(exc) or type(exc).__name__
                run.runner_failed = isinstance(exc, RunnerStepFailed)
                run.steps[-1].update(seconds=round(self.clock() - started, 3), detail=error)
                self._cleanup(run)
                return run.report(name, error)
            run.steps[-1].update(ok=True, seconds=round(self.clock() - started, 3))
        return run.report(None, None)

    def _cleanup(self, run: _Run) -> None:
        if run.server_id is None:
            return
        started = self.clock()
        run.steps.append({"step": "cleanup", "ok": False, "request_id": None, "seconds": 0.0, "detail": None})
        try:
            self._delete(run)
            run.steps[-1]["ok"] = True
        except (StepFailed, httpx.HTTPError) as exc:
            run.steps[-1]["detail"] = str(exc)
        run.steps[-1]["seconds"] = round(self.clock() - started, 3)

    def report(self, report: dict[str, Any]) -> dict[str, Any]:
        """Send a canary's report to os-kumo-canaries; the stored run (with the host's verdict)."""
        resp = self.api.post(f"{COMPUTE}/os-kumo-canaries", json={"canary": report})
        resp.raise_for_status()
        return dict(resp.json()["canary"])
