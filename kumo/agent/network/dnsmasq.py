"""One dnsmasq per network, inside its namespace, converged without restarts.

`DnsmasqManager.reconcile(spec)` is the whole protocol (networking-notes §3.4):

1. the options file is rewritten when it changed (atomically, by rename);
2. reservations are files in `hosts.d/`, one per port, written atomically (`.name.tmp` then
   rename: dnsmasq skips dot files and never reads half a file). A new file is read by dnsmasq's
   inotify watch: **an addition sends no signal**;
3. **a removal sends no signal either**: its file is unlinked and its lease given back with
   `dhcp_release` (from inside the namespace, one process for the batch), and dnsmasq 2.90 keeps
   the removed record in memory (it only ever adds records from `hosts.d` until a SIGHUP, which
   re-reads every reservation and is deaf meanwhile: 22.9 s at 50,000). Keeping it is harmless:
   its MAC left with its port. Such records are **held**: remembered in `held.json` (with the
   pid of the dnsmasq holding them) *before* their files go, so a crash leaves a superset.
   A new or changed reservation that **collides** with a held one (same IP, or same MAC, but not
   the same line; `dnsmasq_conf.collides`) would be refused by dnsmasq ("duplicate dhcp-host IP
   address"): then, and when the options change, the batch ends in **one** SIGHUP, after every
   file change, and nothing is held any more. The API hands addresses out next-fit
   (kumo/network/addressing.py), so a freed address comes back only once its pool wrapped, and
   collisions are rare. Held records are bounded by the pools: each holds an address no file
   holds. A `reload-pending` marker is written before the first file of a reloading batch
   changes and removed once the SIGHUP is sent, so a crash in between still ends in a reload;
4. dnsmasq is started only when none runs for the network, and restarted only when its command
   line must change (a subnet range added or removed). A running one whose pid file and
   `/proc/<pid>/cmdline` match is **adopted** (with what it holds): after the agent's own
   restart nothing restarts. A started dnsmasq holds nothing.

`supervise()` respawns any supervised dnsmasq that died (counted in `respawns`). Every step is
idempotent; after a crash anywhere, the next `reconcile` converges.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kumo.agent.network import dnsmasq_conf
from kumo.agent.network.dnsmasq_conf import Paths
from kumo.agent.network.run import NetworkError, in_namespace, run
from kumo.agent.network.spec import NetworkSpec

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


@dataclass
class DhcpChange:
    """What one reconcile did (for logs, metrics and tests)."""

    pid: int | None = None
    started: bool = False  # no dnsmasq ran (or it had to change its command line)
    adopted: bool = False  # a running dnsmasq this manager did not start was kept
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    options_changed: bool = False
    reloaded: bool = False  # SIGHUP sent
    collisions: list[str] = field(default_factory=list)  # files that needed the reload
    held: int = 0  # removed reservations dnsmasq still holds in memory after this reconcile
    released: list[str] = field(default_factory=list)  # IPs given back with dhcp_release


def write_atomic(path: Path, content: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content)
    os.replace(tmp, path)


def process_argv(pid: int) -> list[str] | None:
    """A live process's argv; None when it is gone (or a zombie: an empty cmdline)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None
    return [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]


def unreadable_by_others(path: Path) -> Path | None:
    """The first directory on the way to `path` that other users cannot traverse, if any."""
    for directory in [*reversed(path.parents), path]:
        try:
            if not directory.stat().st_mode & stat.S_IXOTH:
                return directory
        except OSError:
            return directory
    return None


class DnsmasqManager:
    def __init__(
        self,
        root: Path,
        binary: str = "dnsmasq",
        release_binary: str = "dhcp_release",
        log_dhcp: bool = False,
    ) -> None:
        self.root = root
        self.binary = binary
        self.log_dhcp = log_dhcp
        self.release_binary = release_binary
        self.respawns = 0
        self._lock = threading.RLock()
        self._specs: dict[str, NetworkSpec] = {}  # supervised networks
        self._files: dict[str, dict[str, str]] = {}  # what hosts.d holds, as last written/read
        self._known_pids: dict[str, int] = {}  # dnsmasqs this manager started or adopted

    def paths(self, network_id: str) -> Paths:
        return Paths(self.root / network_id)

    def _argv(self, spec: NetworkSpec) -> list[str]:
        return dnsmasq_conf.command_line(spec, self.paths(spec.id), self.binary, self.log_dhcp)

    # -- processes ------------------------------------------------------------------------------

    def running_pid(self, spec: NetworkSpec) -> int | None:
        """The pid of this network's dnsmasq if one runs: its pid file names a live process
        whose command line carries this network's pid file."""
        paths = self.paths(spec.id)
        try:
            pid = int(paths.pid.read_text().strip())
        except (OSError, ValueError):
            return None
        argv = process_argv(pid)
        if argv is None or f"--pid-file={paths.pid}" not in argv:
            return None
        return pid

    def _matches(self, pid: int, wanted: list[str]) -> bool:
        argv = process_argv(pid)
        return argv is not None and argv[1:] == wanted[1:]

    def _start(self, spec: NetworkSpec, argv: list[str]) -> int:
        paths = self.paths(spec.id)
        blocked = unreadable_by_others(paths.hosts)
        if blocked is not None:
            raise NetworkError(
                f"dnsmasq drops to user nobody and could not read its hosts directory: {blocked} is not"
                " searchable by others (chmod o+x it, or choose another state directory)"
            )
        paths.pid.unlink(missing_ok=True)
        paths.held.unlink(missing_ok=True)  # a new dnsmasq holds nothing (even with an old pid)
        # dnsmasq daemonizes: it exits once its child is ready (or reports why it is not), so the
        # process is no child of the agent and outlives it (to be adopted).
        run(in_namespace(spec.namespace, argv), timeout=START_TIMEOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            pid = self.running_pid(spec)
            if pid is not None:
                return pid
            time.sleep(0.01)
        raise NetworkError(f"dnsmasq for network {spec.id} did not write its pid file")

    def _kill(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and process_argv(pid) is not None:
            time.sleep(0.01)
        if process_argv(pid) is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- files ----------------------------------------------------------------------------------

    def _current_files(self, network_id: str, rescan: bool) -> dict[str, str]:
        cached = self._files.get(network_id)
        if cached is not None and not rescan:
            return cached
        hosts = self.paths(network_id).hosts
        found: dict[str, str] = {}
        for entry in os.scandir(hosts):
            if entry.name.startswith("."):
                if entry.name.endswith(".tmp"):  # a write interrupted by a crash
                    os.unlink(entry.path)
                continue
            try:
                found[entry.name] = Path(entry.path).read_text()
            except OSError:
                continue
        self._files[network_id] = found
        return found

    def _sync_files(
        self,
        spec: NetworkSpec,
        change: DhcpChange,
        current: dict[str, str],
        wanted: dict[str, str],
        new: dict[str, str],
    ) -> None:
        """`new`: the files of `wanted` that `current` lacks or holds otherwise."""
        hosts = self.paths(spec.id).hosts
        # Removals and replacements first, additions last: an IP moving from one port to another
        # in one batch must not be read by inotify while its old owner still holds it.
        for name in sorted(set(current) - set(wanted)):
            (hosts / name).unlink(missing_ok=True)
            del current[name]
            change.removed.append(name)
        for name, content in sorted(new.items()):
            if name in current:
                write_atomic(hosts / name, content)
                current[name] = content
                change.changed.append(name)
        for name, content in sorted(new.items()):
            if name not in current:
                write_atomic(hosts / name, content)
                current[name] = content
                change.added.append(name)

    def _release(self, spec: NetworkSpec, change: DhcpChange) -> None:
        try:
            text = self.paths(spec.id).leases.read_text()
        except OSError:
            return
        stale = dnsmasq_conf.stale_leases(dnsmasq_conf.parse_leases(text), spec)
        if not stale:
            return
        commands = []
        for lease in stale:
            argv = [self.release_binary, spec.ns_veth, lease.ip, lease.mac]
            if lease.client_id:
                argv.append(lease.client_id)
            commands.append(shlex.join(argv))
        # One process for the batch (each dhcp_release is a packet to dnsmasq, ~ms).
        run(in_namespace(spec.namespace, ["sh", "-c", "; ".join(commands)]), check=False)
        change.released += [lease.ip for lease in stale]

    # -- held records ---------------------------------------------------------------------------

    def held(self, network_id: str, pid: int | None) -> set[str]:
        """The host lines dnsmasq `pid` holds in memory with no file (empty for another pid:
        a dnsmasq started since holds nothing)."""
        if pid is None:
            return set()
        try:
            data = json.loads(self.paths(network_id).held.read_text())
        except (OSError, ValueError):
            return set()
        if not isinstance(data, dict) or data.get("pid") != pid:
            return set()
        return {line for line in data.get("lines") or () if isinstance(line, str)}

    def _hold(self, network_id: str, pid: int | None, lines: set[str]) -> None:
        path = self.paths(network_id).held
        if pid is None or not lines:
            path.unlink(missing_ok=True)
            return
        write_atomic(path, json.dumps({"pid": pid, "lines": sorted(lines)}))

    # -- the protocol ---------------------------------------------------------------------------

    def reconcile(self, spec: NetworkSpec, rescan: bool = False) -> DhcpChange:
        """Converge this network's dnsmasq on `spec` (see the module's docstring). `rescan`
        re-reads hosts.d from disk instead of trusting what this manager last wrote there (a
        periodic full reconcile)."""
        with self._lock:
            change = DhcpChange()
            if not spec.has_dhcp:
                self.stop(spec.id)
                return change
            paths = self.paths(spec.id)
            paths.hosts.mkdir(parents=True, exist_ok=True)
            options = dnsmasq_conf.options_text(spec)
            try:
                change.options_changed = paths.opts.read_text() != options
            except OSError:
                change.options_changed = True
            current = self._current_files(spec.id, rescan or spec.id not in self._known_pids)
            wanted = dnsmasq_conf.host_files(spec)

            argv = self._argv(spec)
            pid = self.running_pid(spec)
            if pid is not None and not self._matches(pid, argv):
                log.info("dnsmasq %s of network %s: command line changed, restarting", pid, spec.id)
                self._kill(pid)
                pid = None
            # What the running dnsmasq keeps once this batch's files are gone or replaced, and
            # the new lines it must take beside them.
            was_held = self.held(spec.id, pid)
            gone = {content for name, content in current.items() if wanted.get(name) != content}
            new = {name: content for name, content in wanted.items() if current.get(name) != content}
            # A held line is in no file: written again (a port put back), it is no longer held.
            held = (was_held | gone) - set(new.values())
            change.collisions = dnsmasq_conf.collisions(new, held)
            if pid is not None and (change.options_changed or change.collisions):
                # Written before the first file of the batch changes, removed once the reload is
                # sent: a crash in between leaves the reload owed, not forgotten.
                paths.reload_pending.touch()
            elif pid is not None and held != was_held:
                self._hold(spec.id, pid, held)  # before the files go: a crash leaves a superset
            if change.options_changed:
                write_atomic(paths.opts, options)
            self._sync_files(spec, change, current, wanted, new)

            if pid is None:
                pid = self._start(spec, argv)
                change.started = True
                held = set()
            else:
                change.adopted = self._known_pids.get(spec.id) != pid
                if paths.reload_pending.exists():
                    os.kill(pid, signal.SIGHUP)
                    change.reloaded = True
                    held = set()
            if not held:
                self._hold(spec.id, pid, held)
            paths.reload_pending.unlink(missing_ok=True)
            change.held = len(held)
            self._known_pids[spec.id] = pid
            self._specs[spec.id] = spec
            change.pid = pid
            self._release(spec, change)
            return change

    def supervise(self) -> list[str]:
        """Respawns every supervised dnsmasq that is not running; returns their networks."""
        respawned: list[str] = []
        with self._lock:
            for network_id, spec in list(self._specs.items()):
                if self.running_pid(spec) is not None:
                    continue
                log.warning("dnsmasq of network %s is not running; respawning it", network_id)
                self._known_pids[network_id] = self._start(spec, self._argv(spec))
                self.respawns += 1
                respawned.append(network_id)
        return respawned

    def restart(self, network_id: str) -> int:
        """Stops and starts a supervised network's dnsmasq (what kumo never does on a change;
        for operators and for measuring what a restart costs). Returns the new pid."""
        with self._lock:
            spec = self._specs[network_id]
            pid = self.running_pid(spec)
            if pid is not None:
                self._kill(pid)
            new = self._start(spec, self._argv(spec))
            self._known_pids[network_id] = new
            return new

    def supervise_forever(self, stop: threading.Event, interval: float = 2.0) -> None:
        while not stop.wait(interval):
            try:
                self.supervise()
            except NetworkError as exc:
                log.error("dnsmasq supervision: %s", exc)

    def stop(self, network_id: str) -> None:
        """Stops supervising and stops the network's dnsmasq (its state files stay)."""
        with self._lock:
            spec = self._specs.pop(network_id, None)
            self._known_pids.pop(network_id, None)
            self._files.pop(network_id, None)
            pid_file = self.paths(network_id).pid
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                return
            argv = process_argv(pid)
            if argv is not None and f"--pid-file={pid_file}" in argv:
                self._kill(pid)
            del spec
