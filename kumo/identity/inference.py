"""Implied roles: Keystone's role inference rules and the effective roles they give.

Invariant: `effective(session, role_ids)` is the assigned roles plus every role reachable from
them through the rules, each once, sorted by name; a rule never makes a cycle (refused when
created), and `admin` is never implied (Keystone's `prohibited_implied_role`). Two statements
whatever the number of roles: the rules (a small table) and the roles found.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.identity.models import GLOBAL_ROLE, ImpliedRole, Role

PROHIBITED_IMPLIED = frozenset({"admin"})


def rules(session: Session) -> dict[str, set[str]]:
    """prior role id -> the role ids it implies directly."""
    out: dict[str, set[str]] = {}
    for prior, implied in session.execute(select(ImpliedRole.prior_role_id, ImpliedRole.implied_role_id)):
        out.setdefault(prior, set()).add(implied)
    return out


def closure(role_ids: Iterable[str], graph: dict[str, set[str]]) -> set[str]:
    """The roles `role_ids` give through the rules of `graph`, themselves included."""
    seen: set[str] = set()
    todo = list(role_ids)
    while todo:
        rid = todo.pop()
        if rid not in seen:
            seen.add(rid)
            todo.extend(graph.get(rid, ()))
    return seen


def effective(session: Session, role_ids: Iterable[str]) -> list[tuple[str, str]]:
    """(id, name) of the assigned roles and every role they imply, sorted by name. Domain-specific
    roles only lend what they imply: they are never in a token themselves (as Keystone)."""
    ids = closure(role_ids, rules(session))
    if not ids:
        return []
    rows = session.execute(
        select(Role.id, Role.name)
        .where(Role.id.in_(sorted(ids)), Role.domain_id == GLOBAL_ROLE)
        .order_by(Role.name)
    )
    return [(r.id, r.name) for r in rows]


def would_cycle(session: Session, prior_id: str, implied_id: str) -> bool:
    """Whether adding prior -> implied closes a loop (the implied role reaches the prior)."""
    return prior_id in closure([implied_id], rules(session))
