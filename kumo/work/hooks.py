"""What higher layers add to enqueueing and settling work, registered once at start-up
(kumo.wiring.install) so the queue never imports them.

Invariants:
- `enqueued` runs every registered hook's `on_enqueued` on a task just added to the session,
  in registration order, inside the enqueuer's transaction: a hook may add keys to the payload
  or refuse the work (raise), and the refusal rolls the whole change back.
- `settled` runs every hook's `settle` on a task whose result is being applied, in
  registration order, BEFORE the server's own settling (kumo.compute.server_ops.settle): a
  hook may rewrite `result` for it (baremetal turns a node's power state name into the
  server's power state number), so a node moves with its conductor's report before its server.
- Registering the same hooks object twice registers it once.
- `lock_first` runs every registered locker on the ids of a batch of results about to be
  settled, BEFORE any of their tasks is locked: a higher layer whose rows are locked before a
  task's on its own paths (a precache job: its row, then its tasks) locks them here too, so
  every path takes the locks in one order (that row, then the task) and none can deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session

from kumo.work.models import Task


class WorkHooks(Protocol):
    def on_enqueued(self, session: Session, task: Task) -> None:
        """A task was added to `session`; raise to refuse it."""

    def settle(self, session: Session, task: Task, ok: bool, result: dict[str, Any]) -> None:
        """A task's result is being applied; `result` may be rewritten for the settling after."""

    def late(self, session: Session, task: Task, result: dict[str, Any]) -> None:
        """A result arrived for a task that had already failed without one (once per task):
        what it reports happened anyway (bytes moved) may be recorded; nothing settles."""


_registered: list[WorkHooks] = []


def register(hooks: WorkHooks) -> None:
    if not any(h is hooks for h in _registered):
        _registered.append(hooks)


def unregister(hooks: WorkHooks) -> None:
    _registered[:] = [h for h in _registered if h is not hooks]


def registered() -> tuple[WorkHooks, ...]:
    return tuple(_registered)


def enqueued(session: Session, task: Task) -> None:
    for hooks in _registered:
        hooks.on_enqueued(session, task)


def settled(session: Session, task: Task, ok: bool, result: dict[str, Any]) -> None:
    for hooks in _registered:
        hooks.settle(session, task, ok, result)


def late(session: Session, task: Task, result: dict[str, Any]) -> None:
    for hooks in _registered:
        hooks.late(session, task, result)


# (session, task ids of the results about to be settled): lock what must be locked before them
Locker = Callable[[Session, Sequence[str]], None]
_lockers: list[Locker] = []


def register_locker(locker: Locker) -> None:
    if not any(existing is locker for existing in _lockers):
        _lockers.append(locker)


def unregister_locker(locker: Locker) -> None:
    _lockers[:] = [existing for existing in _lockers if existing is not locker]


def lockers() -> tuple[Locker, ...]:
    return tuple(_lockers)


def lock_first(session: Session, task_ids: Sequence[str]) -> None:
    for locker in _lockers:
        locker(session, task_ids)
