"""A page of GET /servers/detail is `detail` of each server, byte for byte.

The page reads columns, not ORM instances (`servers.list_servers` with `view.DETAIL_FIELDS`);
GET /servers/{id} renders the record `view.record` makes of the ORM instance. Both go through
`view.render`, and must give the same JSON for the same server, at every microversion,
for admins and members, on SQLite and PostgreSQL. Every field below differs between servers, so
a column read into the wrong place shows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select

from kumo.api.context import RequestContext
from kumo.compute import servers
from kumo.compute.microversion import Microversion
from kumo.compute.models import Instance
from kumo.compute.views import servers as view
from kumo.db import Database
from kumo.tags import TagFilter

BASE = "http://cloud.example:8774"
T0 = dt.datetime(2026, 11, 3, 9, 15, 42, 123456)
VERSIONS = [
    "2.1",
    "2.3",
    "2.9",
    "2.16",
    "2.19",
    "2.26",
    "2.47",
    "2.53",
    "2.63",
    "2.64",
    "2.73",
    "2.90",
    "2.96",
]
UP = {"compute-1": True, "compute-2": False}  # compute-3: no heartbeat row (UNKNOWN)
ADMIN = RequestContext(user_id="u-admin", project_id="p-admin", roles=("admin", "member", "reader"))
MEMBER = RequestContext(user_id="u-demo", project_id="p-demo", roles=("member", "reader"))


def _instance(i: int, **overrides: Any) -> Instance:
    fields: dict[str, Any] = dict(
        uuid=f"00000000-0000-4000-8000-{i:012d}",
        project_id="p-demo" if i % 3 else "p-other",
        user_id=f"u-{i}",
        name=f"web-{i}",
        description=f"server {i}" if i % 2 else None,
        hostname=f"host-name-{i}",
        image_ref=f"img-{i % 4}",
        flavor={
            "id": str(i % 3),
            "name": f"m{i % 3}",
            "vcpus": i % 3 + 1,
            "ram": 512,
            "disk": 1,
            "ephemeral": i % 2,
            "swap": 0,
            "extra_specs": {"hw:cpu_policy": "dedicated"} if i % 2 else {},
        },
        vcpus=1,
        memory_mb=512,
        vm_state="active",
        task_state=None,
        power_state=1,
        host=f"compute-{i % 4}" if i % 4 else None,
        availability_zone="nova" if i % 4 else None,
        key_name=f"key-{i}" if i % 2 else None,
        key_data="ssh-rsa AAAA",
        user_data=f"dXNlcl9kYXRh{i}" if i % 2 else None,
        access_ip_v4=f"10.0.0.{i}" if i % 3 == 1 else "",
        access_ip_v6="fd00::1" if i % 5 == 1 else "",
        config_drive="True" if i % 2 else "",
        locked=bool(i % 2),
        progress=i % 100,
        metadata_={"role": f"r{i % 2}"} if i % 3 else {},
        tags=[f"t{i % 2}", "blue"] if i % 2 else [],
        scheduler_hints={"group": "g"},
        fault=None,
        launch_index=i % 5,
        reservation_id=f"r-{i % 7}",
        created_at=T0 + dt.timedelta(seconds=i // 2),  # pairs share created_at: id breaks ties
        updated_at=T0 + dt.timedelta(seconds=i, microseconds=i),
        launched_at=T0 + dt.timedelta(seconds=i) if i % 4 else None,
        terminated_at=None,
    )
    fields.update(overrides)
    return Instance(**fields)


def _fleet() -> list[Instance]:
    out = [_instance(i) for i in range(1, 25)]
    # Every status a page shows (progress in some, a fault in others).
    out += [
        _instance(30, vm_state="building", task_state="scheduling", host=None, image_ref=""),
        _instance(31, vm_state="active", task_state="rebooting"),
        _instance(32, vm_state="stopped", task_state=None, power_state=4),
        _instance(33, vm_state="resized", task_state=None),
        _instance(34, vm_state="active", task_state="resize_migrating"),
        _instance(35, vm_state="shelved_offloaded", task_state=None, host=None),
        _instance(36, vm_state="active", updated_at=None),
        _instance(37, flavor={}),
        _instance(38, metadata_={}, tags=["a", "b", "c"]),
    ]
    out += [
        _instance(
            40 + n,
            vm_state="error",
            task_state=None,
            fault=fault,
            project_id="p-demo",
        )
        for n, fault in enumerate(
            [
                {
                    "code": 500,
                    "message": "No valid host",
                    "details": "Traceback …",
                    "created": T0.isoformat(),
                },
                {"code": 404, "message": "Image gone", "details": "not found"},
                {"code": 409, "message": "Conflict", "details": ""},
                None,
            ]
        )
    ]
    return out


def _write(db: Database) -> None:
    with db.transaction() as s:
        s.add_all(_fleet())


def _expected(db: Database, ctx: RequestContext, q: servers.ListQuery, version: Microversion) -> bytes:
    """The ORM path: whole instances, in the page's order, through `view.detail` (without the
    show body's `server_groups`, 2.71, which Nova never puts in a list)."""
    with db.read() as s:
        ids = [r.uuid for r in servers.list_servers(s, ctx, q)]
        by_uuid = {i.uuid: i for i in s.scalars(select(Instance).where(Instance.uuid.in_(ids)))}
        bodies = [view.detail(by_uuid[u], BASE, version, ctx, UP.get(by_uuid[u].host or "")) for u in ids]
    for body in bodies:
        body.pop("server_groups", None)
    return orjson.dumps(bodies)


def _page(db: Database, ctx: RequestContext, q: servers.ListQuery, version: Microversion) -> bytes:
    user_data = ctx.is_admin and version.at_least("2.3")
    with db.read() as s:
        rows = servers.list_servers(s, ctx, q, view.DETAIL_FIELDS, user_data)
    return orjson.dumps(view.detail_page(rows, BASE, version, ctx, UP))


@pytest.mark.parametrize("who", ["admin", "member"])
def test_page_is_detail_of_each_server_byte_for_byte(db: Database, who: str) -> None:
    _write(db)
    ctx = ADMIN if who == "admin" else MEMBER
    for version in VERSIONS:
        mv = Microversion(*(int(p) for p in version.split(".")))
        q = servers.ListQuery(all_tenants=True) if who == "admin" else servers.ListQuery()
        page = _page(db, ctx, q, mv)
        assert page == _expected(db, ctx, q, mv), version
        fleet = _fleet()
        mine = [i for i in fleet if i.project_id == "p-demo"]
        assert len(orjson.loads(page)) == len(fleet if who == "admin" else mine) < 40


def test_user_data_is_read_only_when_shown(db: Database) -> None:
    _write(db)
    q = servers.ListQuery(all_tenants=True)
    with db.read() as s:
        without = servers.list_servers(s, ADMIN, q, view.DETAIL_FIELDS, user_data=False)
        with_it = servers.list_servers(s, ADMIN, q, view.DETAIL_FIELDS, user_data=True)
    at = view.DETAIL_FIELDS.index("user_data")
    assert {r[at] for r in without} == {None}
    assert any(r[at] for r in with_it)


@pytest.mark.parametrize(
    "sort_key, sort_dir",
    [
        ("created_at", "desc"),
        ("created_at", "asc"),
        ("name", "asc"),
        ("uuid", "desc"),
        ("updated_at", "desc"),
    ],
)
def test_marker_pages_walk_the_whole_list_once(db: Database, sort_key: str, sort_dir: str) -> None:
    _write(db)
    with db.read() as s:
        whole = [
            r.uuid
            for r in servers.list_servers(
                s, ADMIN, servers.ListQuery(all_tenants=True, sort_key=sort_key, sort_dir=sort_dir)
            )
        ]
        walked: list[str] = []
        marker = None
        while True:
            q = servers.ListQuery(
                all_tenants=True, sort_key=sort_key, sort_dir=sort_dir, limit=4, marker=marker
            )
            page = [r.uuid for r in servers.list_servers(s, ADMIN, q, view.DETAIL_FIELDS)]
            walked += page
            if len(page) < 4:
                break
            marker = page[-1]
    assert walked == whole and len(whole) == len(_fleet())


def test_brief_rows_and_filters(db: Database) -> None:
    _write(db)
    with db.read() as s:
        tagged = servers.list_servers(
            s, MEMBER, servers.ListQuery(tags=TagFilter(all_of=frozenset({"blue", "t1"})))
        )
        named = servers.list_servers(s, MEMBER, servers.ListQuery(name="^web-1[0-9]$"))
    mine = [i for i in _fleet() if i.project_id == "p-demo"]
    assert {r.name for r in tagged} == {i.name for i in mine if {"blue", "t1"} <= set(i.tags)}
    assert {r.name for r in named} == {f"web-{i}" for i in range(10, 20) if i % 3}
    assert len(tagged) > 3
    assert view.brief(named[0], BASE)["links"][0]["href"].startswith(f"{BASE}/compute/v2.1/servers/")


def test_the_list_indexes_match_the_migration(tmp_path: Any) -> None:
    """Migration a4 builds the indexes the model declares, and its downgrade takes them away."""
    from alembic import command

    from kumo.db.migrate import alembic_config, upgrade
    from kumo.schema import metadata

    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diffs = [
            d for d in compare_metadata(MigrationContext.configure(conn), metadata) if "instances" in repr(d)
        ]
        names = {ix["name"] for ix in engine.dialect.get_indexes(conn, "instances")}
    assert diffs == []
    assert {"ix_instances_project_created_id", "ix_instances_created_id"} <= names
    command.downgrade(alembic_config(url), "a3_scheduler_indexes")
    with engine.connect() as conn:
        names = {ix["name"] for ix in engine.dialect.get_indexes(conn, "instances")}
    engine.dispose()
    assert "ix_instances_project_created" in names and "ix_instances_created_id" not in names


def test_hosts_up_agrees_with_is_up(db: Database) -> None:
    """The list reads two columns per host; hosts.is_up decides on whole hosts."""
    from kumo.compute import hosts
    from kumo.compute.hosts import is_up
    from kumo.compute.models import ComputeHost
    from kumo.config import get_settings
    from kumo.db import utcnow

    now = utcnow()
    timeout = get_settings().heartbeat_timeout_seconds
    beats = {
        "fresh": now,
        "stale": now - dt.timedelta(seconds=timeout + 5),
        "never": None,
        "forced": now,
    }
    with db.transaction() as s:
        for name in beats:
            hosts.register_host(s, name, vcpus=8, memory_mb=16384, disk_gb=100)
    with db.transaction() as s:
        for host in s.scalars(select(ComputeHost)):
            host.last_heartbeat = beats[host.name]
            host.forced_down = host.name == "forced"
    with db.read() as s:
        up = servers.hosts_up(s, {*beats, "unknown"})
        expected = {h.name: is_up(h, None, timeout) for h in s.scalars(select(ComputeHost))}
    assert up == expected == {"fresh": True, "stale": False, "never": False, "forced": False}
