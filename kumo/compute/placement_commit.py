"""A placement's writes as one PostgreSQL statement: the scheduler's hot path.

Placing an instance writes, in one transaction: the chosen provider's generation
compare-and-swap and the allocation rows (kumo.placement.claims), the instance's host,
availability zone and task_state, the end of its scheduling event and the start of its spawn
event (kumo.compute.actions), and the spawn task for the host's agent (kumo.agent.tasks).
Through the ORM that is seven statements, and a read of the instance's open scheduling event
before them, each a round trip and a few hundred microseconds of SQLAlchemy; a lone request's
schedule + claim spent most of its time there.

On PostgreSQL `write` sends them as one statement, which finds the open event itself (as
scheduling._open_events does): data-modifying CTEs, each conditional on the compare-and-swap, so
when the swap matches no row nothing at all is written, exactly as claims.claim raises before
writing anything (the caller may try its next candidate in the same transaction). The rules are
those of the modules named above; tests/functional/compute/test_placement_commit.py checks, on
PostgreSQL, that this statement and the ORM path write the same rows. The ORM path
(scheduling._place) stays for SQLite, for baremetal nodes (whose provision state moves with the
task, kumo.baremetal.service.on_task_enqueued) and for placements that record more than the
usual events.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from kumo.compute.models import Instance
from kumo.compute.states import ACTIONS, SCHEDULE_EVENT, TaskState
from kumo.db import utcnow
from kumo.metrics import CLAIM_CONFLICTS, CLAIM_SECONDS

SPAWN_EVENT = ACTIONS["spawn"].event  # the agent's part of the create action

_PLACE = """
WITH event AS (
    SELECT e.id, e.action_id, a.request_id
    FROM instance_action_events AS e JOIN instance_actions AS a ON a.id = e.action_id
    WHERE a.instance_uuid = %(instance_uuid)s AND e.event = %(schedule_event)s AND e.finish_time IS NULL
    ORDER BY e.id DESC
    LIMIT 1
), swap AS (
    UPDATE resource_providers
    SET generation = generation + 1, updated_at = %(now)s
    WHERE id = %(provider_id)s AND generation = %(generation)s
    RETURNING id
), allocation AS (
    INSERT INTO allocations (provider_id, consumer_id, resource_class, used, created_at)
    SELECT swap.id, %(instance_uuid)s, wanted.resource_class, wanted.used, %(now)s
    FROM swap, unnest(CAST(%(classes)s AS varchar[]), CAST(%(amounts)s AS integer[]))
        AS wanted(resource_class, used)
), placed AS (
    UPDATE instances
    SET host = %(host)s, availability_zone = %(availability_zone)s, task_state = %(task_state)s,
        updated_at = %(now)s
    WHERE id = %(instance_id)s AND EXISTS (SELECT FROM swap)
), scheduled AS (
    UPDATE instance_action_events SET finish_time = %(now)s, result = 'Success'
    WHERE id IN (SELECT id FROM event) AND finish_time IS NULL AND EXISTS (SELECT FROM swap)
    RETURNING action_id
), touched AS (
    UPDATE instance_actions SET updated_at = %(now)s WHERE id IN (SELECT action_id FROM scheduled)
), spawn AS (
    INSERT INTO instance_action_events (action_id, event, host, start_time)
    SELECT event.action_id, %(spawn_event)s, %(host)s, %(now)s FROM swap, event
    RETURNING id
)
INSERT INTO tasks (id, host, instance_uuid, kind, payload, state, request_id, attempts,
                   created_at, updated_at)
SELECT %(task_id)s, %(host)s, %(instance_uuid)s, 'spawn',
       json_build_object('event_id', (SELECT id FROM spawn), 'instance', CAST(%(spec)s AS json)),
       'pending', COALESCE((SELECT request_id FROM event), '-'), 0, %(now)s, %(now)s
FROM swap
RETURNING request_id
"""


@dataclass(frozen=True)
class Placement:
    """One instance on one candidate host: what `write` needs beyond the instance row."""

    host: str
    availability_zone: str | None
    provider_id: int
    generation: int  # the provider's generation the scheduler saw
    resources: Mapping[str, int]


def write(session: Session, instance: Instance, placement: Placement, spec: dict[str, Any]) -> str | None:
    """Claim and hand the instance to its host in one statement; the request id of its create
    action ("-" when it has no open scheduling event), or None (and nothing written) when the
    provider's generation moved since the scheduler read it. `spec` is the agent's view of the
    instance (servers.spec). The statement finds the instance's open scheduling event itself
    (as scheduling._open_events does). The session's copy of the instance is updated as
    committed, so no ORM flush writes it again."""
    started = time.perf_counter()
    wanted = sorted((rc, amount) for rc, amount in placement.resources.items() if amount > 0)
    now = utcnow()
    row = (
        session.connection()
        .exec_driver_sql(
            _PLACE,
            {
                "now": now,
                "provider_id": placement.provider_id,
                "generation": placement.generation,
                "instance_uuid": instance.uuid,
                "classes": [rc for rc, _ in wanted],
                "amounts": [amount for _, amount in wanted],
                "host": placement.host,
                "availability_zone": placement.availability_zone,
                "task_state": TaskState.SPAWNING,
                "instance_id": instance.id,
                "schedule_event": SCHEDULE_EVENT,
                "spawn_event": SPAWN_EVENT,
                "task_id": str(uuid.uuid4()),
                "spec": json.dumps(spec),
            },
        )
        .first()
    )
    if row is None:
        CLAIM_CONFLICTS.inc()
        return None
    for name, value in (
        ("host", placement.host),
        ("availability_zone", placement.availability_zone),
        ("task_state", TaskState.SPAWNING),
        ("updated_at", now),
    ):
        set_committed_value(instance, name, value)
    CLAIM_SECONDS.observe(time.perf_counter() - started)
    return str(row[0])
