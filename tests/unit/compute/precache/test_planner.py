"""The pure fan-out planner: one origin copy per rack, bounded peers, reassignment, retries."""

from __future__ import annotations

from collections import Counter

import pytest

from kumo.compute.precache.planner import (
    ORIGIN,
    Assignment,
    Plan,
    Policy,
    Skip,
    Target,
    after_failure,
    job_state,
    plan,
)

IMG = "11111111-1111-4111-8111-111111111111"
IMG2 = "22222222-2222-4222-8222-222222222222"
SPENT = "no copy in the rack can serve its peers and its origin copies are spent (3 origin copies)"


def t(
    host: str, rack: str | None = "r1", state: str = "queued", source: str | None = None, **kw: object
) -> Target:
    return Target(host, str(kw.pop("image", IMG)), rack, state, source, **kw)  # type: ignore[arg-type]


def origin(host: str, image: str = IMG) -> Assignment:
    return Assignment(host, image, (ORIGIN,))


def peers(host: str, *holders: str, image: str = IMG) -> Assignment:
    return Assignment(host, image, tuple(f"peer:{h}" for h in holders))


CASES = [
    pytest.param(
        [t("a1"), t("a2"), t("a3")],
        Policy(),
        Plan((origin("a1"),)),
        id="a fresh rack gets one seed from the origin, the others wait",
    ),
    pytest.param(
        [t(f"{r}{i}", rack=r) for r in "abc" for i in (1, 2)],
        Policy(origin_concurrency=2),
        Plan((origin("a1"), origin("b1"))),
        id="one seed per rack, at most origin_concurrency seeds at once",
    ),
    pytest.param(
        [t("a1", state="downloading", source=ORIGIN), t("a2"), t("b1", rack="b"), t("b2", rack="b")],
        Policy(origin_concurrency=1),
        Plan(),
        id="the origin is busy: the next rack's seed waits its turn",
    ),
    pytest.param(
        [t("a1", state="downloading", source=ORIGIN), t("a2"), t("a3")],
        Policy(),
        Plan(),
        id="a rack whose seed is in flight waits for it (no second origin copy)",
    ),
    pytest.param(
        [t("a1", state="cached", source=ORIGIN), t("a2"), t("a3"), t("a4"), t("a5")],
        Policy(peers_per_holder=2),
        Plan((peers("a2", "a1"), peers("a3", "a1"))),
        id="a holder serves at most peers_per_holder peers at once",
    ),
    pytest.param(
        [
            t("a1", state="cached", source=ORIGIN),
            t("a2", state="cached", source="peer:a1"),
            t("a3", state="downloading", source="peer:a1"),
            t("a4"),
            t("a5"),
            t("a6"),
        ],
        Policy(peers_per_holder=2, peer_fallbacks=1),
        Plan((peers("a4", "a2", "a1"), peers("a5", "a2"))),
        id="the freest holder first; a fallback holder spends a slot too; no origin in a peer task",
    ),
    pytest.param(
        [t("a1", state="existing"), t("b1", rack="b"), t("b2", rack="b")],
        Policy(),
        Plan((origin("b1"),)),
        id="no peer traffic across racks by default",
    ),
    pytest.param(
        [t("a1", state="existing"), t("b1", rack="b"), t("b2", rack="b")],
        Policy(cross_rack_peers=True),
        Plan((peers("b1", "a1"), peers("b2", "a1"))),
        id="cross-rack peers when asked",
    ),
    pytest.param(
        [t("a1", state="downloading", source=ORIGIN, up=False), t("a2"), t("a3")],
        Policy(),
        Plan((origin("a2"),), (Skip("a1", IMG, "host down"),)),
        id="a dead seed is skipped and replaced",
    ),
    pytest.param(
        [t("a1", state="cached", up=False), t("a2"), t("a3")],
        Policy(),
        Plan((origin("a2"),)),
        id="a dead holder serves no one: the rack is seeded again",
    ),
    pytest.param(
        [t("a1", up=False), t("a2")],
        Policy(),
        Plan((origin("a2"),), (Skip("a1", IMG, "host down"),)),
        id="a dead queued host is skipped",
    ),
    pytest.param(
        [t("a1", free_disk_gb=10), t("a2", free_disk_gb=500)],
        Policy(),
        Plan((origin("a2"),)),
        id="the seed is the host with the most free disk",
    ),
    pytest.param(
        [t("a1", rack=None), t("a2", rack=None)],
        Policy(),
        Plan((origin("a1"),)),
        id="hosts without a rack label form one rack",
    ),
    pytest.param(
        [t("a1"), t("a1", image=IMG2)],
        Policy(origin_concurrency=1),
        Plan((origin("a1"),)),
        id="the origin's bound covers every image of the job",
    ),
    pytest.param(
        [t("a1", origin_attempts=1), t("a2"), t("a3", origin_attempts=1)],
        Policy(),
        Plan((origin("a2"),)),
        id="a failed seed is retried on a host that has not tried the origin",
    ),
    pytest.param(
        [t("a1", origin_attempts=2), t("a2", origin_attempts=1), t("b1", rack="b", origin_attempts=1)],
        Policy(rack_origin_attempts=3),
        Plan(
            (origin("b1"),),
            errors=(
                Skip("a1", IMG, "origin copy failed (3 origin copies)"),
                Skip("a2", IMG, "origin copy failed (3 origin copies)"),
            ),
        ),
        id="after rack_origin_attempts origin copies a rack's remaining rows are errors, other racks go on",
    ),
    pytest.param(
        [t("a1", state="skipped", origin_attempts=3, up=False), t("a2")],
        Policy(rack_origin_attempts=3),
        Plan(errors=(Skip("a2", IMG, "origin copy failed (3 origin copies)"),)),
        id="dead seeds count against the rack's origin budget",
    ),
    pytest.param(
        [t("a1", state="downloading", source=ORIGIN, origin_attempts=3), t("a2")],
        Policy(rack_origin_attempts=3),
        Plan(),
        id="the last origin attempt in flight is waited for",
    ),
    pytest.param(
        [t("a1", origin_attempts=3), t("a1", image=IMG2), t("a2", image=IMG2)],
        Policy(rack_origin_attempts=3),
        Plan((origin("a1", IMG2),), errors=(Skip("a1", IMG, "origin copy failed (3 origin copies)"),)),
        id="the origin budget is per (rack, image): another image of the job still copies",
    ),
    pytest.param(
        [t("a1", state="cached", source=ORIGIN, serves=False), t("a2"), t("a3")],
        Policy(),
        Plan((origin("a2"),)),
        id="a holder with no registered endpoint is no peer (its rack is seeded within the budget)",
    ),
    pytest.param(
        [
            t("a1", state="cached", source=ORIGIN),
            t("a2", state="downloading", source="peer:b9", planned=("peer:b9", "peer:a1")),
            t("a3"),
            t("a4"),
        ],
        Policy(peers_per_holder=2),
        Plan((peers("a3", "a1"),)),
        id="a task listing a holder as its fallback holds one of its slots",
    ),
    pytest.param(
        [t("a1", state="existing"), t("a2"), t("a3"), t("b1", rack="b"), t("b2", rack="b")],
        Policy(),
        Plan((origin("b1"), peers("a2", "a1"), peers("a3", "a1"))),
        id="a rack with a host already holding the image takes no origin copy: its peers copy from it",
    ),
    pytest.param(
        [t("a1", state="cached", source=ORIGIN), t("a2", attempts=1, failed_from=("a1",)), t("a3")],
        Policy(rack_origin_attempts=3),
        Plan((origin("a2"), peers("a3", "a1"))),
        id="a host whose peer copies failed from every holder of its rack falls back to the origin",
    ),
    pytest.param(
        [
            t("a1", state="cached", source=ORIGIN),
            t("a2", state="cached", source="peer:a1"),
            t("a3", attempts=1, failed_from=("a1",)),
        ],
        Policy(),
        Plan((peers("a3", "a2"),)),
        id="a host whose peer copy failed copies from another holder, not from the origin",
    ),
    pytest.param(
        [
            t("a1", state="cached", source=ORIGIN),
            t("a2", state="downloading", source=ORIGIN, origin_attempts=1, attempts=2),
            t("a3", attempts=1, failed_from=("a1",)),
        ],
        Policy(rack_origin_attempts=3),
        Plan(),
        id="one origin fallback in flight per rack: the next one waits for it",
    ),
    pytest.param(
        [
            t("a1", state="existing"),
            t("a2", attempts=2, origin_attempts=1, failed_from=("a1",)),
            t("a3", origin_attempts=2),
        ],
        Policy(rack_origin_attempts=3),
        Plan((peers("a2", "a1"), peers("a3", "a1"))),
        id="the rack's origin budget spent: a failed peer copies from its holder again (bounded)",
    ),
    pytest.param(
        [t("a1", state="cached", source=ORIGIN, serves=False, origin_attempts=3), t("a2"), t("a3")],
        Policy(rack_origin_attempts=3),
        Plan(
            errors=(
                Skip(
                    "a2",
                    IMG,
                    SPENT,
                ),
                Skip(
                    "a3",
                    IMG,
                    SPENT,
                ),
            )
        ),
        id="copies landed but none can serve: the error says so, not 'origin copy failed'",
    ),
    pytest.param(
        [t("a1", state="error"), t("a2", state="skipped"), t("a3", state="cached")],
        Policy(),
        Plan(),
        id="nothing to do once every row is terminal",
    ),
]


@pytest.mark.parametrize(("targets", "policy", "expected"), CASES)
def test_plan(targets: list[Target], policy: Policy, expected: Plan) -> None:
    assert plan(targets, policy) == expected


def test_a_rack_fills_in_generations_with_one_origin_copy() -> None:
    """Run the planner to the end over a rack of 40 (every copy succeeds at once): the origin
    serves one copy, and the holders triple per generation (1 + 2 per holder)."""
    rows = {f"h{i:02}": t(f"h{i:02}") for i in range(40)}
    generations = origin_copies = 0
    while any(r.state == "queued" for r in rows.values()):
        decision = plan(rows.values(), Policy(peers_per_holder=2))
        assert decision.assignments
        generations += 1
        for a in decision.assignments:
            origin_copies += a.source == ORIGIN
            rows[a.host] = t(a.host, state="cached", source=a.source)
    assert origin_copies == 1
    assert generations == 1 + 4  # the seed, then ⌈log₃ 40⌉ = 4 generations of peers


def test_repeated_failures_never_cost_a_rack_more_than_its_origin_budget() -> None:
    """Run the planner to the end over two racks and two images where every copy fails: the
    origin is asked at most rack_origin_attempts times per (rack, image), each time by a host
    that had not tried it yet, and every row ends in error."""
    pol = Policy(rack_origin_attempts=2, max_attempts=5)
    rows = {(h, i): t(h, rack=h[0], image=i) for h in ("a1", "a2", "a3", "b1", "b2") for i in (IMG, IMG2)}
    tried: list[tuple[str, str, str]] = []
    for _ in range(50):
        decision = plan(rows.values(), pol)
        if not decision.assignments and not decision.errors:
            break
        for e in decision.errors:
            rows[(e.host, e.image_id)] = t(e.host, rack=e.host[0], image=e.image_id, state="error")
        for a in decision.assignments:
            assert a.sources == (ORIGIN,)
            tried.append((a.host[0], a.image_id, a.host))
            old = rows[(a.host, a.image_id)]
            rows[(a.host, a.image_id)] = t(
                a.host, rack=a.host[0], image=a.image_id, origin_attempts=old.origin_attempts + 1
            )
    assert all(r.state == "error" for r in rows.values())
    per_rack = Counter((rack, image) for rack, image, _ in tried)
    assert per_rack == {(r, i): 2 for r in "ab" for i in (IMG, IMG2)}
    assert len(set(tried)) == len(tried)  # a seed is never retried on the same host


@pytest.mark.parametrize(("attempts", "state"), [(1, "queued"), (2, "queued"), (3, "error"), (4, "error")])
def test_retries_are_bounded(attempts: int, state: str) -> None:
    assert after_failure(attempts, Policy(max_attempts=3)) == state


@pytest.mark.parametrize(
    ("states", "cancelled", "expected"),
    [
        (["cached", "queued"], False, "running"),
        (["cached", "downloading"], True, "running"),
        (["cached", "existing", "skipped"], False, "done"),
        (["cached", "error"], False, "done"),
        (["error", "skipped"], False, "failed"),
        (["cached", "skipped"], True, "cancelled"),
    ],
)
def test_job_state(states: list[str], cancelled: bool, expected: str) -> None:
    assert job_state(states, cancelled) == expected


def test_a_stale_holder_costs_its_rack_one_origin_copy_and_never_hangs() -> None:
    """A host marked `existing` from a stale cache report cannot serve: every peer copy from it
    fails, and its refusal (missing) requeues it. Run the planner to the end: the rack gets
    one origin copy, every host ends cached, and the job never waits forever."""
    pol = Policy(peers_per_holder=2, rack_origin_attempts=3, max_attempts=3)
    rows = {h: t(h) for h in ("a1", "a2", "a3", "a4", "a5")}
    rows["a1"] = t("a1", state="existing")  # stale: it does not hold the image
    stale = {"a1"}
    origin_copies = 0
    for _ in range(20):
        decision = plan(rows.values(), pol)
        if not decision.assignments:
            break
        assert not decision.errors
        failing = set(stale)  # as the round started: every copy from them fails
        for a in decision.assignments:
            old = rows[a.host]
            attempts, origin_attempts = old.attempts + 1, old.origin_attempts + (a.source == ORIGIN)
            holder = peer_of(a.source)
            if holder in failing:  # the peer copy fails; the stale holder is requeued
                rows[a.host] = t(
                    a.host, attempts=attempts, origin_attempts=origin_attempts, failed_from=(holder,)
                )
                rows[holder] = t(
                    holder, attempts=rows[holder].attempts, origin_attempts=rows[holder].origin_attempts
                )
                stale.discard(holder)
            else:
                origin_copies += a.source == ORIGIN
                rows[a.host] = t(
                    a.host,
                    state="cached",
                    source=a.source,
                    attempts=attempts,
                    origin_attempts=origin_attempts,
                )
    assert {r.state for r in rows.values()} == {"cached"}
    assert origin_copies == 1


def peer_of(source: str) -> str:
    return source.removeprefix("peer:") if source.startswith("peer:") else ""
