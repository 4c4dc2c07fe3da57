"""DHCP reservations without restarts (issue 17): at N reservations on one network, served by
kumo's dnsmasq manager (kumo/agent/network/dnsmasq.py) in a real namespace on a real bridge,

  add       a new reservation: from its file's rename in hosts.d to the first OFFER a client
            gets for it (inotify; no signal, no reload)
  remove    DHCP deafness while one reservation is removed (unlink + dhcp_release, no signal:
            dnsmasq holds the removed record): a prober in a client namespace sends a DISCOVER
            for an *unaffected* reservation every `--interval` and waits that long for the
            OFFER; the deafness is the longest run of unanswered probes
  collide   the same deafness when a reservation is removed and a new MAC takes its address
            (the rare case next-fit IPAM leaves: a collision with a held record, one SIGHUP,
            dnsmasq re-reads all N); then the new MAC is offered the address
  restart   the same deafness across a full dnsmasq restart (stop + start with N hosts): what a
            DHCP server that restarts on every change costs each time

Needs root and scripts/install-network (dnsmasq, dhcp_release, iproute2). The prober is
bench/dhcp_probe.py, run inside the client namespace.

    .venv/bin/python bench/dhcp_reservations.py --sizes 1000 10000 50000 --repeat 3

Prints one JSON line per size and a table.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kumo.agent.network.firewall.iptables import IptablesFirewall  # noqa: E402
from kumo.agent.network.host import NetworkHost  # noqa: E402
from kumo.agent.network.spec import NetworkSpec, Reservation, SubnetSpec  # noqa: E402

PROBE = ROOT / "bench" / "dhcp_probe.py"
CIDR = ipaddress.IPv4Network("10.190.0.0/16")
TOOLS = ("ip", "dnsmasq", "dhcp_release")


def unusable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (namespaces, bridges)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    return f"missing {', '.join(missing)} (scripts/install-network)" if missing else None


def mac_of(n: int) -> str:
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in n.to_bytes(3, "big"))


def ip_of(n: int) -> str:
    return str(CIDR.network_address + 10 + n)


def reservation(n: int) -> Reservation:
    return Reservation(f"port-{n}", mac_of(n), ip_of(n), f"host-{n}")


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


class Client:
    """A namespace with a veth on the network's bridge, from which the prober runs. Its veth is
    not named `tap…`: kumo's firewall drops a `tap…` port of a kumo bridge that no port declared
    (the network host's firewall is installed as the DHCP namespace's veth is declared open), and
    the prober is no port, only a DHCP client on the wire.

    The probers it starts are its own: `close` stops any still running before it deletes the veth
    (a prober left running when a run fails would otherwise die on the deleted device, ENODEV,
    and its traceback read as if something else had taken the veth mid-run); a prober's stderr
    is captured and goes into the error of the step it failed."""

    def __init__(self, spec: NetworkSpec) -> None:
        self.bridge = spec.bridge
        self._probers: list[subprocess.Popen[str]] = []
        self._open()

    def _open(self) -> None:
        self.name = "kumo-b-" + uuid.uuid4().hex[:8]
        self.tap = "prb" + self.name[7:]
        sh("ip", "netns", "add", self.name)
        sh("ip", "link", "add", self.tap, "type", "veth", "peer", "name", "eth0", "netns", self.name)
        sh("ip", "link", "set", self.tap, "master", self.bridge, "up")
        sh("ip", "-n", self.name, "link", "set", "eth0", "up")

    def links(self) -> str:
        """What the namespace holds (`ip -br link`), or why it cannot be read."""
        done = subprocess.run(["ip", "-n", self.name, "-br", "link"], capture_output=True, text=True)
        return done.stdout.strip() or done.stderr.strip()

    def reopen(self) -> None:
        """A new namespace and veth on the same bridge (the old one's device was found gone)."""
        print(f"dhcp_reservations: {self.name}'s links: {self.links()}", file=sys.stderr)
        self.close()
        self._open()

    def probe(self, mac: str, mode: str, interval: float, *extra: str) -> subprocess.Popen[str]:
        argv = ["ip", "netns", "exec", self.name, sys.executable, str(PROBE), "--mac", mac,
                "--interval", str(interval), mode, *extra]  # fmt: skip
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._probers.append(proc)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            _, err = stop(proc)
            raise AssertionError(f"the prober did not start in {self.name} ({self.links()}): {err.strip()}")
        return proc

    def close(self) -> None:
        for proc in self._probers:  # before their device goes
            if proc.poll() is None:
                stop(proc)
        self._probers.clear()
        subprocess.run(["ip", "link", "del", self.tap], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Kills a prober; what it wrote (stdout, stderr)."""
    proc.kill()
    out, err = proc.communicate(timeout=30)
    return out or "", err or ""


def last_row(proc: subprocess.Popen[str], stdin: str | None, timeout: float) -> dict[str, Any]:
    """The prober's result line, after it ends (told to by `stdin`, or by itself); an error
    carrying what it wrote to stderr when it ended without one. Read through the same buffered
    stdout its "ready" line was read from: communicate() reads the raw pipe, and loses a result
    that arrived together with "ready" (an offer answered within milliseconds, the reader
    descheduled meanwhile: "exited 0 without a result"). Killed after `timeout` seconds."""
    assert proc.stdout is not None and proc.stderr is not None
    if proc.stdout.closed:
        raise AssertionError(f"the prober was stopped (exit {proc.returncode}) before its result")
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    try:
        if stdin is not None and proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.write(stdin)
                proc.stdin.close()
            except (BrokenPipeError, ValueError):  # it ended already: its output tells
                pass
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.wait()
    finally:
        watchdog.cancel()
    lines = out.strip().splitlines()
    if not lines:
        raise AssertionError(f"the prober exited {proc.returncode} without a result: {err.strip()}")
    return dict(json.loads(lines[-1]))


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    return last_row(proc, "stop\n", 120)


def longest_gap(row: dict[str, Any], after: float) -> float:
    """The longest unanswered window that ends after `after` (the change), in seconds."""
    gaps = [end - start for start, end in row["gaps"] if end >= after]
    return max(gaps, default=0.0)


def wait_serving(client: Client, n: int = 0) -> float:
    """Blocks until dnsmasq answers a DISCOVER for reservation `n`; returns how long that took.
    A prober that cannot start or dies without an answer is started again, at most twice, the
    last time from a new namespace and veth, its error printed; dnsmasq's answer is asserted
    either way."""
    for attempt in range(3):
        if attempt == 2:
            client.reopen()
        try:
            prober = client.probe(mac_of(n), "until-offer", 0.005, "--timeout", "300")
            result = last_row(prober, None, 400)
        except AssertionError as died:
            print(f"dhcp_reservations: {died}; again", file=sys.stderr)
            continue
        assert result["offered"] == ip_of(n), result
        return float(result["seconds"])
    raise AssertionError("the DHCP prober died three times without an answer (its errors are above)")


def quiet_wait(seconds: float) -> None:
    time.sleep(seconds)


def run_size(host: NetworkHost, n: int, repeat: int, interval: float) -> dict[str, Any]:
    net_id = str(uuid.uuid4())
    subnet = SubnetSpec("s-bench", str(CIDR), str(CIDR.network_address + 1), str(CIDR.network_address + 2))
    spec = NetworkSpec(net_id, "bench" + net_id[5:], subnets=(subnet,),
                       reservations=tuple(reservation(i) for i in range(n)))  # fmt: skip
    t0 = time.monotonic()
    applied = host.reconcile(spec)
    first_start = time.monotonic() - t0
    pid = applied.dhcp.pid
    client: Client | None = None
    try:
        client = Client(spec)
        # dnsmasq reads its hosts after it has daemonized, and may answer the first ones read
        # before it read them all: serving starts when the last reservation is offered.
        wait_serving(client, n - 1)
        first_serving = time.monotonic() - t0
        row: dict[str, Any] = {
            "reservations": n,
            "first_reconcile_s": round(first_start, 3),
            "first_serving_s": round(first_serving, 3),
        }
        adds: list[float] = []
        reconciles: list[float] = []
        for i in range(repeat):
            new = reservation(n + i)
            prober = client.probe(new.mac, "until-offer", 0.002, "--timeout", "30")
            t = time.monotonic()
            spec = replace(spec, reservations=(*spec.reservations, new))
            change = host.reconcile(spec).dhcp
            reconciles.append(time.monotonic() - t)
            assert change.added == [new.port_id] and not change.reloaded and change.pid == pid
            written = host.dnsmasq.paths(spec.id).hosts.joinpath(new.port_id).stat().st_mtime
            result = last_row(prober, None, 60)
            assert result["offered"] == new.ip, result
            adds.append(result["at"] - written)
        removes: list[float] = []
        for _ in range(repeat):
            gone = spec.reservations[-1]
            watch = client.probe(mac_of(0), "watch", interval)
            quiet_wait(0.2)
            t = time.monotonic()
            spec = replace(spec, reservations=spec.reservations[:-1])
            change = host.reconcile(spec).dhcp
            assert change.removed == [gone.port_id] and not change.reloaded and change.pid == pid
            quiet_wait(0.05)
            wait_serving(client)
            quiet_wait(0.1)
            removes.append(longest_gap(finish(watch), t))
        collisions: list[float] = []
        for i in range(repeat):
            gone = spec.reservations[-1]
            spec = replace(spec, reservations=spec.reservations[:-1])
            assert not host.reconcile(spec).dhcp.reloaded  # held, no signal
            heir = Reservation(f"heir-{i}", mac_of(n + repeat + i), gone.ip, f"heir-{i}")
            watch = client.probe(mac_of(0), "watch", interval)
            quiet_wait(0.2)
            t = time.monotonic()
            spec = replace(spec, reservations=(*spec.reservations, heir))
            change = host.reconcile(spec).dhcp
            assert change.collisions == [heir.port_id] and change.reloaded and change.pid == pid
            quiet_wait(0.05)
            wait_serving(client)
            quiet_wait(0.1)
            collisions.append(longest_gap(finish(watch), t))
            heir_probe = client.probe(heir.mac, "until-offer", 0.005, "--timeout", "300")
            assert last_row(heir_probe, None, 400)["offered"] == heir.ip
        restarts: list[float] = []
        for _ in range(repeat):
            watch = client.probe(mac_of(0), "watch", interval)
            quiet_wait(0.2)
            t = time.monotonic()
            new_pid = host.dnsmasq.restart(spec.id)
            assert new_pid != pid
            pid = new_pid
            wait_serving(client)
            quiet_wait(0.1)
            restarts.append(longest_gap(finish(watch), t))
        row.update(
            {
                "add_to_offer_ms": round(1000 * statistics.median(adds), 1),
                "add_to_offer_max_ms": round(1000 * max(adds), 1),
                "add_reconcile_ms": round(1000 * statistics.median(reconciles), 1),
                "remove_deaf_ms": round(1000 * statistics.median(removes), 1),
                "remove_deaf_max_ms": round(1000 * max(removes), 1),
                "collision_deaf_ms": round(1000 * statistics.median(collisions), 1),
                "collision_deaf_max_ms": round(1000 * max(collisions), 1),
                "restart_deaf_ms": round(1000 * statistics.median(restarts), 1),
                "restart_deaf_max_ms": round(1000 * max(restarts), 1),
                "probe_interval_ms": round(1000 * interval, 1),
                "repeat": repeat,
                "dnsmasq_restarted_by_changes": False,
                "removals_reloaded": False,
                "collisions_reloaded": True,
            }
        )
    finally:  # whatever happened (an interrupt too): no namespace, bridge nor dnsmasq left
        if client is not None:
            client.close()
        host.remove(spec.id, spec.dhcp_port_id)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.005, help="probe period while watching (s)")
    args = parser.parse_args(argv)
    reason = unusable_reason()
    if reason:
        print(f"dhcp_reservations: {reason}", file=sys.stderr)
        return 2
    if max(args.sizes) + 2 * args.repeat > CIDR.num_addresses - 20:
        parser.error(f"at most {CIDR.num_addresses - 20 - 2 * args.repeat} reservations")
    rows = []
    with tempfile.TemporaryDirectory(prefix="kumo-dhcp-bench-", dir="/var/tmp") as state:
        Path(state).chmod(0o755)  # dnsmasq reads its hosts directory as user nobody
        host = NetworkHost(Path(state), IptablesFirewall())
        try:
            for n in args.sizes:
                row = run_size(host, n, args.repeat, args.interval)
                print(json.dumps(row), flush=True)
                rows.append(row)
        finally:
            # No FORWARD jump nor kumo chain left behind, unless another kumo (a `kumo up`, the
            # network tests) still has ports in the firewall: teardown() removes every kumo
            # chain on the machine, theirs too.
            if not host.firewall.taps():
                host.firewall.teardown()
    print(
        f"\n{'reservations':>12} {'add→offer ms':>13} {'remove deaf ms':>15} {'collision deaf ms':>18}"
        f" {'restart deaf ms':>16}"
    )
    for row in rows:
        print(
            f"{row['reservations']:>12,} {row['add_to_offer_ms']:>13} {row['remove_deaf_ms']:>15} "
            f"{row['collision_deaf_ms']:>18} {row['restart_deaf_ms']:>16}"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
