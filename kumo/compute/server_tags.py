"""Server tags (Nova's 2.26 API, tags on create from 2.52): the sub-resource's reads and writes
(the tags' own rules and the list filters: kumo.compute.tags).

Invariants: a server holds at most MAX_TAGS distinct tags, each a string of 1-60 characters
without ',' or '/'; tags change only while the server is in one of TAGGABLE_VM_STATES (Nova:
active, paused, suspended, stopped; a 409 otherwise). A tag change is no state change: as in
Nova, it records no instance action.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import servers
from kumo.compute.models import Instance
from kumo.compute.tags import MAX_TAGS, tag_problem
from kumo.errors import BadRequest, InvalidState, NotFound

# Nova's server_tags controller: tags change only in these vm_states (paused and suspended by
# name: those states come with their actions).
TAGGABLE_VM_STATES = frozenset({"active", "paused", "suspended", "stopped"})


def _writable(session: Session, ctx: RequestContext, server_id: str, what: str) -> Instance:
    ctx.require_writer()
    instance = servers.get(session, ctx, server_id, for_update=True)
    if instance.vm_state not in TAGGABLE_VM_STATES:
        raise InvalidState(
            f"Cannot '{what}' instance {server_id} while it is in vm_state {instance.vm_state}"
        )
    return instance


def _record(instance: Instance, tags: Sequence[str]) -> None:
    instance.tags = list(tags)


def list_tags(session: Session, ctx: RequestContext, server_id: str) -> list[str]:
    return list(servers.get(session, ctx, server_id).tags or [])


def has_tag(session: Session, ctx: RequestContext, server_id: str, tag: str) -> None:
    """GET /tags/{tag}: nothing when the server has the tag, else 404."""
    if tag not in (servers.get(session, ctx, server_id).tags or []):
        raise NotFound(f"Server {server_id} has no tag '{tag}'")


def replace_tags(session: Session, ctx: RequestContext, server_id: str, tags: list[str]) -> list[str]:
    """PUT /tags: the server's tags become `tags` (validated by validate_tags)."""
    instance = _writable(session, ctx, server_id, "update tags")
    _record(instance, tags)
    return list(tags)


def add_tag(session: Session, ctx: RequestContext, server_id: str, tag: str) -> bool:
    """PUT /tags/{tag}: True when the tag was added, False when the server had it. Nova checks
    the state, then the tag, then the count (a server at the limit refuses even a tag it has)."""
    instance = _writable(session, ctx, server_id, "update tag")
    problem = tag_problem(tag)
    if problem is not None:
        raise BadRequest(
            f"Tag '{tag}' is invalid. It must be a non empty string without characters '/' and ','. "
            f"Validation error message: {problem}"
        )
    current = list(instance.tags or [])
    if len(current) >= MAX_TAGS:
        raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
    if tag in current:
        return False
    _record(instance, [*current, tag])
    return True


def delete_tag(session: Session, ctx: RequestContext, server_id: str, tag: str) -> None:
    instance = _writable(session, ctx, server_id, "delete tag")
    current = list(instance.tags or [])
    if tag not in current:
        raise NotFound(f"Instance {server_id} has no tag '{tag}'.")
    _record(instance, [t for t in current if t != tag])


def delete_all(session: Session, ctx: RequestContext, server_id: str) -> None:
    _record(_writable(session, ctx, server_id, "delete tags"), [])
