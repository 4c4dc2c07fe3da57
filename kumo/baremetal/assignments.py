"""Which nodes each live conductor owns, and a version of that assignment, kept per API process
so that a conductor heartbeat where nothing changed costs the same at 50 or 50,000 nodes.

A conductor acts on a node's uuid, name, driver and driver_info (its tasks carry the node's
current state in their payload), so an assignment's *version* is a hash over exactly those of
the nodes it holds. The API process keeps a digest of those four fields for every node (8 bytes
each) and, per set of live conductors, every conductor's version. A heartbeat carrying the
version the conductor holds is answered "unchanged", without reading or sending any node, when
the version is still current.

Keeping the digests current without reading every node: each heartbeat re-reads the nodes whose
row was created or updated since the last refresh (`updated_at`, `created_at`; every write to a
node sets one of them), minus a margin (`WINDOW`) for transactions that committed later than the
timestamp they wrote, and counts the nodes (a deletion); a count that disagrees with the
digests, and every `RESYNC` seconds regardless, reloads them all. Changes to other columns
(power, provision state) re-read those rows but change no version.

Versions are a pure function of the nodes held, so every API worker computes the same one and a
conductor may beat on any of them. Crash safety: a conductor that starts sends no version and
always receives its whole assignment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from kumo.baremetal import ownership
from kumo.baremetal.models import Node
from kumo.db import utcnow

# Rows written up to this long before a refresh are read again by it (a transaction that stamped
# updated_at and committed later than that would otherwise be missed until RESYNC; what it
# changed reaches the node's tasks anyway, which carry the node as it is). The price: for this
# long after a node is written, every heartbeat reads it again (after enrolling or a power sync
# changing 50,000 nodes, half a second of API CPU per heartbeat for this long).
WINDOW = dt.timedelta(seconds=30)
# Every this many seconds the digests are reloaded whole anyway (edits made outside kumo).
RESYNC = 600.0
# Live-conductor sets whose assignments are kept at once (the current one, and a few around a
# change: a conductor joining or dying is seen by the others one heartbeat apart).
_LIVE_SETS = 4


def node_digest(name: str | None, driver: str, driver_info: Mapping[str, Any] | None) -> bytes:
    """What a conductor acts on, of one node, in 8 bytes."""
    text = json.dumps([name, driver, driver_info or {}], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


def version_of(digests: Iterable[tuple[str, bytes]]) -> str:
    """The version of an assignment: a hash over its nodes' (uuid, digest), in uuid order."""
    h = hashlib.blake2b(digest_size=16)
    for node_uuid, digest in sorted(digests):
        h.update(node_uuid.encode())
        h.update(digest)
    return h.hexdigest()


@dataclass
class Owned:
    """One conductor's assignment among a set of live conductors."""

    version: str
    nodes: frozenset[str]


@dataclass
class NodeView:
    """One API process's picture of the nodes, for one database (see the module docstring)."""

    digests: dict[str, bytes] = field(default_factory=dict)
    synced_at: dt.datetime | None = None  # database time (utcnow) the last refresh started
    loaded_at: float = 0.0  # monotonic time of the last full load
    epoch: int = 0  # bumped whenever a digest changes, a node appears or one goes
    new_nodes: bool = False  # nodes appeared since keep_up last ran in this process
    sample: str | None = None  # one node (the smallest uuid): its host's heartbeat says the fleet's
    _assignments: dict[tuple[str, ...], dict[str, Owned]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- keeping the digests current ---------------------------------------------------------
    def refresh(self, session: Session) -> None:
        """Bring the digests up to date (the lock held by the caller)."""
        started = utcnow()
        if self.synced_at is None or time.monotonic() - self.loaded_at >= RESYNC:
            self._load(session)
        else:
            since = self.synced_at - WINDOW
            rows = session.execute(
                select(Node.uuid, Node.name, Node.driver, Node.driver_info).where(
                    or_(Node.updated_at >= since, Node.created_at >= since)
                )
            )
            changed = False
            for node_uuid, name, driver, info in rows:
                digest = node_digest(name, driver, info)
                old = self.digests.get(node_uuid)
                if old != digest:
                    self.digests[node_uuid] = digest
                    changed = True
                    self.new_nodes |= old is None
            count = session.scalar(select(func.count()).select_from(Node)) or 0
            if count != len(self.digests):  # a node went away (or a write slipped past WINDOW)
                self._load(session)
            elif changed:
                self._changed()
        self.synced_at = started

    def _load(self, session: Session) -> None:
        fresh = {
            u: node_digest(n, d, i)
            for u, n, d, i in session.execute(select(Node.uuid, Node.name, Node.driver, Node.driver_info))
        }
        self.loaded_at = time.monotonic()
        if fresh != self.digests:
            self.new_nodes |= bool(fresh.keys() - self.digests.keys())
            self.digests = fresh
            self._changed()

    def _changed(self) -> None:
        self.epoch += 1
        self._assignments.clear()
        self.sample = min(self.digests) if self.digests else None

    # -- assignments ---------------------------------------------------------------------------
    def owned(self, name: str, live: Iterable[str]) -> Owned:
        """`name`'s nodes and their version among the `live` conductors (itself included)."""
        key = tuple(sorted({*live, name}))
        per_conductor = self._assignments.get(key)
        if per_conductor is None:
            groups: dict[str, list[tuple[str, bytes]]] = {c: [] for c in key}
            for node_uuid, digest in self.digests.items():
                owner = ownership.owner(node_uuid, key)
                assert owner is not None
                groups[owner].append((node_uuid, digest))
            per_conductor = {
                c: Owned(version_of(items), frozenset(u for u, _ in items)) for c, items in groups.items()
            }
            if len(self._assignments) >= _LIVE_SETS:
                self._assignments.clear()
            self._assignments[key] = per_conductor
        return per_conductor[name]


_views: weakref.WeakKeyDictionary[Engine, NodeView] = weakref.WeakKeyDictionary()
_views_lock = threading.Lock()


def view_for(bind: Session | Engine) -> NodeView:
    """This process's view of the database (an engine, or the engine a session is bound to)."""
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    assert isinstance(engine, Engine)
    with _views_lock:
        view = _views.get(engine)
        if view is None:
            view = _views[engine] = NodeView()
        return view


def forget() -> None:
    """Drop every view this process keeps, as a restarted API process starts (tests)."""
    with _views_lock:
        _views.clear()
