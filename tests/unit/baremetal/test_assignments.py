"""The API process's view of the nodes behind conductor heartbeats (kumo/baremetal/assignments.py):
versions cover what a conductor acts on and nothing else, the view follows the nodes written
since its last refresh, a deletion, and misses nothing for longer than RESYNC."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from kumo.baremetal import assignments, ownership
from kumo.baremetal.assignments import NodeView, node_digest, version_of
from kumo.baremetal.models import Node
from kumo.db import Database, utcnow
from kumo.schema import metadata


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'v.db'}")
    metadata.create_all(database.engine)
    yield database
    database.dispose()


def add_nodes(db: Database, count: int, prefix: str = "n") -> list[str]:
    uuids = [str(uuid.uuid4()) for _ in range(count)]
    with db.transaction() as session:
        for i, u in enumerate(uuids):
            session.add(Node(uuid=u, name=f"{prefix}{i}", driver="fake-hardware", driver_info={"k": i}))
    return uuids


def refreshed(db: Database, view: NodeView) -> NodeView:
    with db.read() as session, view.lock:
        view.refresh(session)
    return view


def test_a_version_covers_uuid_name_driver_and_driver_info_in_any_order() -> None:
    a = ("a", node_digest("n1", "redfish", {"x": 1, "y": 2}))
    b = ("b", node_digest("n2", "redfish", {}))
    assert version_of([a, b]) == version_of([b, a])
    assert node_digest("n1", "redfish", {"x": 1, "y": 2}) == node_digest("n1", "redfish", {"y": 2, "x": 1})
    for other in (
        node_digest("n1", "redfish", {"x": 1, "y": 3}),
        node_digest("n1", "fake", {"x": 1, "y": 2}),
        node_digest("other", "redfish", {"x": 1, "y": 2}),
    ):
        assert version_of([("a", other), b]) != version_of([a, b])
    assert version_of([a]) != version_of([("c", a[1])])


def test_assignments_split_the_nodes_as_rendezvous_hashing_does(db: Database) -> None:
    nodes = add_nodes(db, 30)
    view = refreshed(db, NodeView())
    one, two = view.owned("c1", ["c1", "c2"]), view.owned("c2", ["c1", "c2"])
    assert one.nodes | two.nodes == set(nodes) and not one.nodes & two.nodes
    assert one.nodes == set(ownership.owned_by("c1", nodes, ["c1", "c2"]))
    assert view.owned("c1", ["c1"]).nodes == set(nodes)  # alone, c1 owns every node
    # Another process computes the same versions.
    again = refreshed(db, NodeView())
    assert again.owned("c1", ["c2", "c1"]).version == one.version


def test_the_view_follows_what_a_conductor_acts_on_and_ignores_the_rest(db: Database) -> None:
    nodes = add_nodes(db, 5)
    view = refreshed(db, NodeView())
    epoch, version = view.epoch, view.owned("c1", ["c1"]).version
    with db.transaction() as session:
        session.execute(update(Node).values(power_state="power on", provision_state="active"))
    assert refreshed(db, view).epoch == epoch and view.owned("c1", ["c1"]).version == version
    with db.transaction() as session:
        session.execute(update(Node).where(Node.uuid == nodes[0]).values(driver_info={"k": "new"}))
    assert refreshed(db, view).epoch == epoch + 1 and view.owned("c1", ["c1"]).version != version
    (extra,) = add_nodes(db, 1, prefix="extra")
    assert refreshed(db, view).new_nodes and extra in view.owned("c1", ["c1"]).nodes
    with db.transaction() as session:
        session.execute(delete(Node).where(Node.uuid == nodes[1]))
    assert nodes[1] not in refreshed(db, view).owned("c1", ["c1"]).nodes
    assert view.sample == min(set(nodes) - {nodes[1]} | {extra})


def test_a_write_stamped_before_the_window_is_caught_by_the_resync(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction that stamped updated_at long before it committed: missed by the
    incremental refresh (whose window it fell out of), caught by the periodic full reload."""
    nodes = add_nodes(db, 3)
    long_ago = utcnow() - assignments.WINDOW - dt.timedelta(seconds=60)
    with db.transaction() as session:  # enrolled long ago
        session.execute(update(Node).values(created_at=long_ago, updated_at=long_ago))
    view = refreshed(db, NodeView())
    version = view.owned("c1", ["c1"]).version
    with db.transaction() as session:
        session.execute(
            update(Node).where(Node.uuid == nodes[0]).values(driver_info={"k": "late"}, updated_at=long_ago)
        )
    assert refreshed(db, view).owned("c1", ["c1"]).version == version  # the documented limit
    monkeypatch.setattr(assignments, "RESYNC", 0.0)
    assert refreshed(db, view).owned("c1", ["c1"]).version != version
