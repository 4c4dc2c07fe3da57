"""Which live conductor owns which node: rendezvous (highest random weight) hashing.

Each (conductor, node) pair gets a pseudo-random weight; a node belongs to the live conductor with
the highest weight for it. When a conductor dies, only its nodes move (each to the conductor with
the next-highest weight); when one joins, it takes about 1/N of the nodes and nothing else moves.
Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def weight(conductor: str, node_uuid: str) -> int:
    digest = hashlib.blake2b(f"{conductor}\x00{node_uuid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(node_uuid: str, conductors: Iterable[str]) -> str | None:
    """The conductor that owns the node, None when no conductor is alive. Ties (practically
    impossible with 64-bit weights) go to the smaller name, so every caller agrees."""
    best: tuple[int, str] | None = None
    for name in conductors:
        key = (weight(name, node_uuid), name)
        if best is None or key[0] > best[0] or (key[0] == best[0] and name < best[1]):
            best = key
    return best[1] if best else None


def owned_by(conductor: str, node_uuids: Iterable[str], conductors: Iterable[str]) -> list[str]:
    """The nodes among `node_uuids` that `conductor` owns, given the live `conductors`."""
    live = sorted(set(conductors) | {conductor})
    return [u for u in node_uuids if owner(u, live) == conductor]
