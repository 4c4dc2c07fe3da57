"""The agent's one connection to libvirtd, reopened when it drops, with lifecycle events.

libvirt delivers events through an event loop the process runs; one daemon thread runs
libvirt's default loop for the whole process (it must be registered before any connection
opens). Callbacks only hand the domain's UUID to the driver: they must not block the loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kumo.agent.drivers.base import DriverError

log = logging.getLogger("kumo.agent.libvirt")

try:
    import libvirt
except ImportError:  # the fake driver and the API never need it
    libvirt = None

_loop_lock = threading.Lock()
_loop_started = False


def require_libvirt() -> Any:
    """The libvirt module, its errors arriving only as exceptions (not also printed)."""
    if libvirt is None:
        raise DriverError("libvirt-python is not installed (run scripts/install-libvirt).")
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


def _start_event_loop() -> None:
    global _loop_started
    with _loop_lock:
        if _loop_started:
            return
        lv = require_libvirt()
        lv.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                try:
                    lv.virEventRunDefaultImpl()
                except Exception:  # the loop must outlive any one callback
                    log.exception("libvirt event loop iteration failed")

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _loop_started = True


class Connection:
    """`get()` returns a live connection, reopening (and re-subscribing) when needed."""

    def __init__(self, uri: str, on_domain_event: Callable[[str], None]) -> None:
        self.uri = uri
        self.on_domain_event = on_domain_event
        self._lock = threading.Lock()
        self._conn: Any = None
        self._callback_id: int | None = None
        _start_event_loop()

    def get(self) -> Any:
        with self._lock:
            if self._conn is not None:
                try:
                    if self._conn.isAlive():
                        return self._conn
                except libvirt.libvirtError:
                    pass
                log.warning("libvirt connection to %s lost; reconnecting", self.uri)
                self._conn = None
            try:
                conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                message = exc.get_error_message()
                raise DriverError(f"Cannot connect to libvirt at {self.uri}: {message}") from None
            conn.setKeepAlive(5, 3)
            self._callback_id = conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle, None
            )
            self._conn = conn
            return conn

    def _lifecycle(self, _conn: Any, dom: Any, event: int, detail: int, _opaque: Any) -> None:
        try:
            self.on_domain_event(dom.UUIDString())
        except Exception:
            log.exception("lifecycle event handler failed")

    def close(self) -> None:
        with self._lock:
            if self._conn is None:
                return
            try:
                if self._callback_id is not None:
                    self._conn.domainEventDeregisterAny(self._callback_id)
                self._conn.close()
            except libvirt.libvirtError:
                pass
            self._conn = None
