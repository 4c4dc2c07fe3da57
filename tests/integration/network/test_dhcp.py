"""DHCP on a real dnsmasq per network: static reservations only, changes without restarts,
removals without reloads (a reload only for a collision with a held record), supervision and
adoption (networking-notes §3.4)."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

from kumo.agent.network.dnsmasq import process_argv
from kumo.agent.network.dnsmasq_conf import host_line
from kumo.agent.network.host import NetworkHost
from kumo.agent.network.spec import Reservation
from tests.integration.network.conftest import Lab, mac_of, wait_until


def test_reserved_mac_gets_its_address_an_unknown_one_none(lab: Lab) -> None:
    spec = lab.network("10.171.0.0/24", reservations=2)
    applied = lab.host.reconcile(spec)
    assert applied.dhcp.started and applied.generation == spec.generation
    known = lab.client(spec, mac_of(1))
    stranger = lab.client(spec, mac_of(999))
    assert known.dhcp() == spec.reservations[1].ip
    assert stranger.dhcp(tries=2) is None
    # Reconciling the same spec again changes nothing and signals nothing.
    again = lab.host.reconcile(spec)
    assert (again.dhcp.pid, again.dhcp.started, again.dhcp.reloaded) == (applied.dhcp.pid, False, False)
    assert not (again.dhcp.added or again.dhcp.removed or again.dhcp.changed)


def test_a_reservation_added_among_10000_is_served_without_a_restart(lab: Lab) -> None:
    spec = lab.network("10.172.0.0/16", reservations=10_000)
    pid = lab.host.reconcile(spec).dhcp.pid
    new = Reservation("port-new", mac_of(20_000), "10.172.200.1", "newcomer")
    client = lab.client(spec, new.mac)
    assert client.offer(timeout=0.3)[0] is None

    start = time.monotonic()
    applied = lab.host.reconcile(replace(spec, reservations=(*spec.reservations, new)))
    offered, _ = client.offer(timeout=5.0)
    served = time.monotonic() - start
    assert offered == new.ip
    assert applied.dhcp.added == ["port-new"] and not applied.dhcp.reloaded  # inotify, no signal
    assert applied.dhcp.pid == pid and not applied.dhcp.started
    assert lab.host.dnsmasq.running_pid(spec) == pid
    print(
        f"\nreservation #10,001: reconcile → first OFFER in {served * 1000:.1f} ms (same dnsmasq pid {pid})"
    )
    assert client.dhcp() == new.ip  # and a real client completes DORA


def test_a_removed_reservation_stops_being_served_and_its_ip_moves_on(lab: Lab) -> None:
    spec = lab.network("10.173.0.0/24", reservations=3)
    pid = lab.host.reconcile(spec).dhcp.pid
    old = lab.client(spec, mac_of(0))
    ip = old.dhcp()
    assert ip == spec.reservations[0].ip  # leased (in the lease file)

    # The port is deleted and a new port (new MAC) takes its address in the same sync.
    moved = Reservation("port-moved", mac_of(500), ip, "moved")
    applied = lab.host.reconcile(replace(spec, reservations=(*spec.reservations[1:], moved)))
    assert applied.dhcp.removed == ["port-0"] and applied.dhcp.added == ["port-moved"]
    assert applied.dhcp.reloaded and applied.dhcp.released == [ip]  # one SIGHUP, lease given back
    assert applied.dhcp.pid == pid and lab.host.dnsmasq.running_pid(spec) == pid

    assert wait_until(lambda: old.offer(timeout=0.2)[0] is None)
    assert old.dhcp(tries=2) is None
    assert lab.client(spec, moved.mac).dhcp() == ip
    log = lab.host.dnsmasq.paths(spec.id).log.read_text()
    assert "not using configured address" not in log


def test_a_killed_dnsmasq_is_respawned_and_serves_again(lab: Lab) -> None:
    spec = lab.network("10.174.0.0/24", reservations=2)
    pid = lab.host.reconcile(spec).dhcp.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: process_argv(pid) is None)
    client = lab.client(spec, mac_of(1))
    assert client.offer(timeout=0.3)[0] is None

    assert lab.host.supervise() == [spec.id]
    new_pid = lab.host.dnsmasq.running_pid(spec)
    assert new_pid is not None and new_pid != pid and lab.host.dnsmasq.respawns == 1
    assert client.dhcp() == spec.reservations[1].ip
    assert lab.host.supervise() == []  # healthy: nothing to do


def test_after_the_agents_restart_running_dnsmasqs_are_adopted(lab: Lab) -> None:
    spec = lab.network("10.175.0.0/24", reservations=3)
    pid = lab.host.reconcile(spec).dhcp.pid

    # A new manager over the same state directory: the agent after its own restart.
    restarted = NetworkHost(lab.state, lab.host.firewall, log_dhcp=lab.host.dnsmasq.log_dhcp)
    smaller = replace(spec, reservations=spec.reservations[1:])
    applied = restarted.reconcile(smaller)
    assert applied.dhcp.adopted and not applied.dhcp.started and applied.dhcp.pid == pid
    assert applied.dhcp.removed == ["port-0"]  # files re-read from disk
    assert not applied.dhcp.reloaded and applied.dhcp.held == 1  # a removal: no signal
    assert lab.client(spec, mac_of(2)).dhcp() == spec.reservations[2].ip

    # A changed subnet range is the one reason to restart (the command line changes).
    wider = replace(smaller, subnets=(replace(smaller.subnets[0], lease_seconds=600),))
    applied = restarted.reconcile(wider)
    assert applied.dhcp.started and applied.dhcp.pid != pid
    lab.host = restarted


def test_churn_with_ip_reuse_never_restarts_nor_blocks(lab: Lab) -> None:
    """networking-notes §3.4's regression test: delete a port, create one with a new MAC and the
    same IP, renew; 100 times. Catches a stale lease blocking reuse, a reload crash (no `set:` tags
    ever) and a duplicate record left by a SIGHUP/inotify race."""
    spec = lab.network("10.179.0.0/24", reservations=5)
    pid = lab.host.reconcile(spec).dhcp.pid
    client = lab.client(spec, mac_of(0))
    ip = spec.reservations[0].ip
    assert client.dhcp() == ip
    for cycle in range(1, 101):
        mac = mac_of(1000 + cycle)
        spec = replace(
            spec, reservations=(Reservation(f"port-c{cycle}", mac, ip, f"c{cycle}"), *spec.reservations[1:])
        )
        applied = lab.host.reconcile(spec)
        assert applied.dhcp.pid == pid and applied.dhcp.reloaded and not applied.dhcp.started
        client.exec("ip", "link", "set", "eth0", "address", mac)
        assert client.dhcp() == ip, f"cycle {cycle}: {mac} did not get {ip}"
    log = lab.host.dnsmasq.paths(spec.id).log.read_text()
    assert "not using configured address" not in log
    assert lab.host.dnsmasq.running_pid(spec) == pid and lab.host.dnsmasq.respawns == 0


def reread_lines(log: str, hosts: object, but: str) -> list[str]:
    """dnsmasq's "read <file>" lines for files of `hosts` but `but` (a SIGHUP re-reads every
    file; inotify tries to read a removed one)."""
    return [line for line in log.splitlines() if f"read {hosts}/" in line and f"/{but}" not in line]


def test_a_removal_sends_no_signal_and_every_other_client_stays_served(lab: Lab) -> None:
    spec = lab.network("10.176.0.0/24", reservations=20)
    pid = lab.host.reconcile(spec).dhcp.pid
    paths = lab.host.dnsmasq.paths(spec.id)
    gone = lab.client(spec, mac_of(0))
    stays = lab.client(spec, mac_of(7))
    ip = gone.dhcp()
    assert ip == spec.reservations[0].ip
    before = reread_lines(paths.log.read_text(), paths.hosts, "port-0")

    smaller = replace(spec, reservations=spec.reservations[1:])
    applied = lab.host.reconcile(smaller)
    assert applied.dhcp.removed == ["port-0"] and applied.dhcp.released == [ip]
    assert not applied.dhcp.reloaded and applied.dhcp.pid == pid and applied.dhcp.held == 1
    assert not (paths.hosts / "port-0").exists() and not paths.reload_pending.exists()
    # No reload happened: dnsmasq re-read no reservation file, and it still holds the removed
    # record (its MAC left with its port: nobody asks for it).
    assert reread_lines(paths.log.read_text(), paths.hosts, "port-0") == before
    assert gone.offer(timeout=1.0)[0] == ip
    assert stays.dhcp() == spec.reservations[7].ip
    # A new reservation that collides with nothing is served at once, still without a signal.
    new = Reservation("port-new", mac_of(300), "10.176.0.200", "new")
    applied = lab.host.reconcile(replace(smaller, reservations=(*smaller.reservations, new)))
    assert applied.dhcp.added == ["port-new"] and not applied.dhcp.reloaded and applied.dhcp.held == 1
    assert lab.client(spec, new.mac).dhcp(tries=10) == new.ip  # a fresh client on a loaded machine
    assert lab.host.dnsmasq.running_pid(spec) == pid


def test_a_collision_with_a_held_record_reloads_once_and_the_new_owner_gets_the_address(
    lab: Lab,
) -> None:
    spec = lab.network("10.177.0.0/24", reservations=5)
    pid = lab.host.reconcile(spec).dhcp.pid
    paths = lab.host.dnsmasq.paths(spec.id)
    old = lab.client(spec, mac_of(0))
    ip = old.dhcp()
    assert ip == spec.reservations[0].ip
    smaller = replace(spec, reservations=spec.reservations[1:])
    assert lab.host.reconcile(smaller).dhcp.held == 1

    # A later port takes the held address (a new MAC): dnsmasq would refuse it beside the held
    # record ("duplicate dhcp-host IP address"), so this batch ends in one SIGHUP.
    heir = Reservation("port-heir", mac_of(400), ip, "heir")
    applied = lab.host.reconcile(replace(smaller, reservations=(*smaller.reservations, heir)))
    assert applied.dhcp.collisions == ["port-heir"] and applied.dhcp.reloaded
    assert applied.dhcp.held == 0 and applied.dhcp.pid == pid and not paths.held.exists()
    assert lab.client(spec, heir.mac).dhcp() == ip
    assert wait_until(lambda: old.offer(timeout=0.2)[0] is None)  # the held record is gone
    # A port taking a held record's MAC with another address collides too.
    again = replace(smaller, reservations=(*smaller.reservations[1:], heir))
    assert lab.host.reconcile(again).dhcp.held == 1  # port-1 held
    twin = Reservation("port-twin", mac_of(1), "10.177.0.100", "twin")
    applied = lab.host.reconcile(replace(again, reservations=(*again.reservations, twin)))
    assert applied.dhcp.collisions == ["port-twin"] and applied.dhcp.reloaded
    assert lab.client(spec, twin.mac).dhcp() == twin.ip
    # (inotify reads each colliding file before the SIGHUP and logs "duplicate dhcp-host"; the
    # reload, sent after every file change, is what serves it.)
    assert "not using configured address" not in paths.log.read_text()
    assert lab.host.dnsmasq.running_pid(spec) == pid


def test_held_records_survive_the_agents_restart(lab: Lab) -> None:
    spec = lab.network("10.178.0.0/24", reservations=4)
    pid = lab.host.reconcile(spec).dhcp.pid
    smaller = replace(spec, reservations=spec.reservations[1:])
    assert lab.host.reconcile(smaller).dhcp.held == 1

    restarted = NetworkHost(lab.state, lab.host.firewall, log_dhcp=lab.host.dnsmasq.log_dhcp)
    lab.host = restarted
    assert restarted.dnsmasq.held(spec.id, pid) == {host_line(spec.reservations[0])}
    heir = Reservation("port-heir", mac_of(500), spec.reservations[0].ip, "heir")
    applied = restarted.reconcile(replace(smaller, reservations=(*smaller.reservations, heir)))
    assert applied.dhcp.adopted and applied.dhcp.pid == pid
    assert applied.dhcp.collisions == ["port-heir"] and applied.dhcp.reloaded and applied.dhcp.held == 0
    assert lab.client(spec, heir.mac).dhcp() == heir.ip

    # A dnsmasq started anew (its pid changed) holds nothing, whatever the file said.
    fewer = replace(smaller, reservations=(*smaller.reservations[1:], heir))
    assert restarted.reconcile(fewer).dhcp.held == 1
    new_pid = restarted.dnsmasq.restart(spec.id)
    assert restarted.dnsmasq.held(spec.id, new_pid) == set()
