"""A compute host's side of `firewall_sync` (kumo/network/firewall.py): read what the host's
firewall must hold from the API, apply it whole, remove the ports no longer wanted, and report
the generation applied.

Invariants:
- A guest never runs unfiltered: before the agent builds, rebuilds or prepares to receive a
  guest (`before_start`) its ports are pinned and the host converges, the pinned ports read by
  id (a migration's destination holds them before they are bound there). A failure fails the
  task: the guest is not started. A start that failed or raised unpins them (`unpin`; an
  attach only its port; none when the guest exists on this host after all).
- A port's rules stay while its tap exists on this host, even once the API no longer lists the
  port (a guest moving away keeps its rules until it is gone); `after_gone` (after a delete,
  a clean-up, a move away or an aborted move) unpins the guest's ports and converges again.
- Everything is keyed by tap name and every step is idempotent: a restarted agent converges
  from the API (it registers, which makes a sync pending) and ends where it would have.
- A converge that failed is retried until one succeeds (a rule removal that failed must not
  stay open): `retry_due` says when, after a backoff that doubles from RETRY_FIRST up to
  RETRY_MAX seconds, and the agent then asks the API for a new sync.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from kumo.agent.network.firewall.base import Firewall
from kumo.agent.network.firewall.select import select_firewall
from kumo.agent.network.run import NetworkError
from kumo.agent.network.spec import SpecError, port_firewall_from_json
from kumo.agent.protocol import TaskResult
from kumo.work.kinds import EmptyPayload

log = logging.getLogger("kumo.agent.firewall")

RETRY_FIRST, RETRY_MAX = 2.0, 60.0  # seconds from a failed converge to its retry

# Reads the host's firewall state from the API, with these extra ports (by id).
StateReader = Callable[[Collection[str]], Mapping[str, Any]]


def tap_exists(tap: str) -> bool:
    return Path("/sys/class/net", tap).exists()


class FirewallSync:
    """Handles `firewall_sync` tasks and guards guests' starts; one per agent that enforces
    security groups."""

    def __init__(
        self,
        firewall: Firewall,
        read_state: StateReader | None = None,
        exists: Callable[[str], bool] = tap_exists,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.firewall = firewall
        self.read_state = read_state
        self.exists = exists
        self.clock = clock
        self._lock = threading.Lock()
        self._pinned: dict[str, tuple[str, ...]] = {}  # instance uuid → its port ids
        self._retry_lock = threading.Lock()
        self._retry_at: float | None = None  # when a failed converge is retried (None: none failed)
        self._retry_delay = RETRY_FIRST

    def converge(self) -> int:
        """Apply the whole state; returns the generation it reflects. A failure (raised) makes a
        retry due after the backoff; a success cancels it."""
        try:
            generation = self._converge()
        except Exception:
            with self._retry_lock:
                self._retry_at = self.clock() + self._retry_delay
            raise
        with self._retry_lock:
            self._retry_at, self._retry_delay = None, RETRY_FIRST
        return generation

    def retry_due(self) -> bool:
        """Whether the last converge failed and its backoff has passed. True once per backoff:
        the next is then scheduled, twice as far (up to RETRY_MAX), until a converge succeeds."""
        with self._retry_lock:
            now = self.clock()
            if self._retry_at is None or now < self._retry_at:
                return False
            self._retry_delay = min(self._retry_delay * 2, RETRY_MAX)
            self._retry_at = now + self._retry_delay
            return True

    def _converge(self) -> int:
        if self.read_state is None:
            raise RuntimeError("FirewallSync has no state reader (the agent sets it)")
        with self._lock:
            extra = sorted({pid for ports in self._pinned.values() for pid in ports})
            state = self.read_state(extra)
            try:
                ports = [port_firewall_from_json(p) for p in state.get("ports") or ()]
            except SpecError as exc:
                raise RuntimeError(f"the API's firewall state is malformed: {exc}") from exc
            self.firewall.apply(ports)
            wanted = {p.tap for p in ports}
            stale = sorted(t for t in self.firewall.taps() - wanted if not self.exists(t))
            if stale:
                self.firewall.remove(stale)
            return int(state.get("generation") or 0)

    def sync(self, _payload: EmptyPayload) -> TaskResult:
        return TaskResult(ok=True, details={"applied_generation": self.converge()})

    def before_start(self, instance: Mapping[str, Any]) -> None:
        """The guest's ports' rules are in place (raises when they cannot be)."""
        port_ids = tuple(str(p["id"]) for p in instance.get("ports") or () if p.get("id"))
        uuid = str(instance.get("uuid") or "")
        if not port_ids:
            return
        with self._lock:
            self._pinned[uuid] = port_ids
        self.converge()

    def unpin(self, uuid: str, port_id: str | None = None) -> None:
        """A guarded start failed: the guest's ports (or only `port_id`, an attach's) are no
        longer pinned, and the host converges without them. Best effort: logged, never raised
        (the next sync converges otherwise)."""
        with self._lock:
            pinned = self._pinned.pop(uuid, ())
            if port_id is not None:
                kept = tuple(pid for pid in pinned if pid != port_id)
                if kept:
                    self._pinned[uuid] = kept
            changed = pinned != self._pinned.get(uuid, ())
        if not changed:
            return
        try:
            self.converge()
        except Exception:  # noqa: BLE001 — the start failed either way; log and go on
            log.exception("firewall converge after a failed start of instance %s failed", uuid)

    def after_gone(self, instance: Mapping[str, Any]) -> None:
        """The guest left this host (or never arrived): its ports are no longer pinned, and
        rules of taps that are gone go. Best effort: the next sync does it otherwise."""
        with self._lock:
            self._pinned.pop(str(instance.get("uuid") or ""), None)
        try:
            self.converge()
        except Exception:  # noqa: BLE001 — the guest is gone either way; log and go on
            log.exception("firewall converge after instance %s left failed", instance.get("uuid"))

    def remove_all(self) -> None:
        """Remove whatever this host's firewall installed (kumo's chains and its jumps into
        them, nothing else): for an agent that stopped serving, as `kumo up` leaves the machine
        it found. Raises NetworkError when the firewall cannot be changed."""
        with self._lock:
            self._pinned.clear()
            self.firewall.teardown()


def firewall_role() -> FirewallSync | None:
    """What an agent of real guests adds: this host's firewall, or None (logged once, with the
    reason) when it cannot run one; its guests then run unfiltered, and the API gives it no
    `firewall_sync` work."""
    try:
        return FirewallSync(select_firewall())
    except NetworkError as exc:
        log.error("this host cannot enforce security groups; its guests run UNFILTERED: %s", exc)
        return None
