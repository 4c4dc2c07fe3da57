"""The SQLite store writes compute's rows by table name (it sits below compute): every column it
names must be the model's column of that name, of the same type, so a renamed or retyped
column fails here rather than in a placement's commit."""

from __future__ import annotations

import pytest
from sqlalchemy import Table

from kumo.compute.models import Instance, InstanceAction, InstanceActionEvent
from kumo.db import Base
from kumo.store import sqlite


@pytest.mark.parametrize(
    ("named", "model_table"),
    [
        (sqlite._INSTANCES, Instance.__table__),
        (sqlite._ACTIONS, InstanceAction.__table__),
        (sqlite._EVENTS, InstanceActionEvent.__table__),
    ],
    ids=["instances", "instance_actions", "instance_action_events"],
)
def test_the_tables_written_by_name_match_the_models(named: Table, model_table: Table) -> None:
    assert named.name == model_table.name
    assert Base.metadata.tables[named.name] is model_table
    for column in named.columns:
        assert column.name in model_table.columns, f"{named.name}.{column.name} is no model column"
        model_type = model_table.columns[column.name].type
        assert type(column.type) is type(model_type), (named.name, column.name, column.type, model_type)


def test_what_the_orm_would_fill_in_is_written_by_hand() -> None:
    """A write by table name applies none of the model's Python-side defaults: the event row it
    inserts names every defaulted column, and each updated table its onupdate columns."""
    inserted = InstanceActionEvent.__table__
    defaulted = {c.name for c in inserted.columns if c.default is not None and not c.primary_key}
    assert defaulted <= set(sqlite._EVENTS.columns.keys())
    updated = ((sqlite._INSTANCES, Instance.__table__), (sqlite._ACTIONS, InstanceAction.__table__))
    for named, model_table in updated:
        on_update = {c.name for c in model_table.columns if c.onupdate is not None}
        assert on_update and on_update <= set(named.columns.keys())
