"""Background loops of an API worker (scheduler, housekeeping). Filled in by the compute core."""

from __future__ import annotations

from dataclasses import dataclass, field
import threading

from kumo.runtime import Runtime


@dataclass
class Workers:
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=5)


def start_workers(rt: Runtime) -> Workers:
    return Workers()
