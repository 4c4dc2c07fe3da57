"""Background loops: an API worker's (the cross-worker wake-ups, and the scheduler unless it runs
in processes of its own), and a `kumo scheduler` process's."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from kumo.compute import shelving
from kumo.compute.day2 import confirm_due
from kumo.compute.precache import service as precache
from kumo.compute.scheduling import schedule_pending, sync_fleet
from kumo.db.notify import PgNotifier
from kumo.gc_tuning import collect_periodically
from kumo.runtime import Runtime
from kumo.store.protocol import database_store
from kumo.work.queue import host_key

log = logging.getLogger(__name__)
SCHEDULER_KEY = "scheduler"


@dataclass
class Workers:
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    notifier: PgNotifier | None = None

    def stop(self, rt: Runtime | None = None) -> None:
        self.stop_event.set()
        if rt is not None:
            rt.waker.wake(SCHEDULER_KEY)
        if self.notifier is not None:
            self.notifier.stop()
        for thread in self.threads:
            thread.join(timeout=5)


def scheduler_loop(rt: Runtime, stop: threading.Event, idle_poll: float = 1.0) -> None:
    """Schedule whenever woken (a create committed) and, as a safety net, every `idle_poll`
    seconds: a wake-up lost to a crash or another worker costs latency, never an instance."""
    while not stop.is_set():
        seen = rt.waker.seq(SCHEDULER_KEY)
        try:
            handled, hosts = schedule_pending(rt)
            if handled == 0:
                sync_fleet(rt)  # between passes: the next one finds the fleet index current
        except Exception:
            log.exception("scheduling pass failed; retrying")
            handled, hosts = 0, set()
            stop.wait(0.5)
        for host in hosts:
            rt.waker.publish(host_key(host))
        if handled == 0:
            rt.waker.wait(SCHEDULER_KEY, seen, idle_poll)


def auto_confirm_loop(rt: Runtime, stop: threading.Event) -> None:
    """Confirm the resizes (and cold migrations) left in VERIFY_RESIZE for the settings'
    `resize_confirm_window` seconds (Nova's _poll_unconfirmed_resizes); looks every second or
    every tenth of the window, whichever is longer. Several API workers may run it: a server's
    confirm locks its row and re-reads its state, so it happens once."""
    window = rt.settings.resize_confirm_window
    interval = max(1.0, window / 10)
    while not stop.wait(interval):
        try:
            confirm_due(rt.db, window)
        except Exception:
            log.exception("auto-confirming resizes failed; retrying")


def offload_loop(rt: Runtime, stop: threading.Event, interval: float = 10.0) -> None:
    """Every `interval` seconds, offload the servers shelved longer than the setting
    shelved_offload_time (when it is above 0: kumo.compute.shelving.offload_due)."""
    while not stop.wait(interval):
        offload_time = rt.settings.shelved_offload_time
        if offload_time <= 0:
            continue
        try:
            with rt.db.transaction() as session:
                hosts = shelving.offload_due(session, offload_time)
        except Exception:
            log.exception("offloading shelved servers failed; retrying")
            continue
        for host in hosts:
            rt.waker.publish(host_key(host))


def precache_sweep_loop(rt: Runtime, stop: threading.Event, interval: float = 5.0) -> None:
    """Every `interval` seconds, advance the running precache jobs: a host that died while
    queued or copying is skipped and its rack's copy handed to another (kumo.compute.precache.service)."""
    while not stop.wait(interval):
        try:
            with rt.db.read() as session:
                running = precache.running_jobs(session)
            if not running:
                continue
            with rt.db.transaction() as session:
                precache.sweep(session, running)
        except Exception:
            log.exception("advancing precache jobs failed; retrying")


def start_workers(rt: Runtime) -> Workers:
    """An API worker's loops: the PostgreSQL wake-ups, the timed full garbage collection
    (kumo.gc_tuning), and the scheduler when `scheduler_in_api` (else `kumo scheduler` processes
    schedule: run_scheduler)."""
    workers = Workers()
    workers.threads.append(collect_periodically(workers.stop_event))
    offloader = threading.Thread(
        target=offload_loop, args=(rt, workers.stop_event), name="kumo-shelve-offload", daemon=True
    )
    offloader.start()
    workers.threads.append(offloader)
    sweeper = threading.Thread(
        target=precache_sweep_loop, args=(rt, workers.stop_event), name="kumo-precache-sweep", daemon=True
    )
    sweeper.start()
    workers.threads.append(sweeper)
    if database_store(rt.db).shared_by_processes:
        workers.notifier = PgNotifier(rt.db, rt.waker).start()
    if rt.settings.scheduler_in_api:
        thread = threading.Thread(
            target=scheduler_loop, args=(rt, workers.stop_event), name="kumo-scheduler", daemon=True
        )
        thread.start()
        workers.threads.append(thread)
    if rt.settings.resize_confirm_window > 0:
        thread = threading.Thread(
            target=auto_confirm_loop, args=(rt, workers.stop_event), name="kumo-auto-confirm", daemon=True
        )
        thread.start()
        workers.threads.append(thread)
    return workers


def run_scheduler(rt: Runtime, stop: threading.Event) -> None:
    """A scheduler process: the scheduling loop in this thread until `stop`, woken over
    PostgreSQL LISTEN/NOTIFY by the API workers' creates. Several may run (they share pending
    instances through SKIP LOCKED); one that dies loses nothing (see kumo.compute.scheduling)."""
    if not database_store(rt.db).shared_by_processes:
        raise RuntimeError("a scheduler process needs PostgreSQL; on SQLite the API schedules itself")
    notifier = PgNotifier(rt.db, rt.waker).start()
    try:
        scheduler_loop(rt, stop)
    finally:
        notifier.stop()
