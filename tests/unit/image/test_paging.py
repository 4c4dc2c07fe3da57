"""Keyset paging of image lists: every image exactly once, in the requested order, for any sort."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from kumo.api.context import RequestContext
from kumo.image import service
from kumo.image.models import Image

ADMIN = RequestContext(user_id="u", project_id="p", roles=("admin",))
T0 = dt.datetime(2024, 1, 1)

image_rows = st.lists(
    st.tuples(
        st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),  # name
        st.one_of(st.none(), st.integers(0, 3)),  # size
        st.integers(0, 2),  # created_at offset: plenty of ties
    ),
    max_size=12,
)
sort_specs = st.lists(
    st.tuples(st.sampled_from(["name", "size", "created_at", "status"]), st.sampled_from(["asc", "desc"])),
    min_size=1,
    max_size=2,
    unique_by=lambda pair: pair[0],
)


def _session() -> Session:
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Image.metadata.create_all(engine, tables=[Image.__table__])  # type: ignore[list-item]
    return Session(engine)


def _reference(images: list[Image], sort: list[tuple[str, str]]) -> list[str]:
    def value(img: Image, key: str) -> Any:
        raw = getattr(img, key)
        return {"name": "", "size": -1}.get(key, raw) if raw is None else raw

    def by(key: str) -> Callable[[Image], Any]:
        return lambda img: value(img, key)

    ordered = list(images)
    full = [*sort, ("id", sort[-1][1])]
    for key, direction in reversed(full):  # stable sorts, least significant key first
        ordered.sort(key=by(key), reverse=direction == "desc")
    return [img.id for img in ordered]


@settings(max_examples=60, deadline=None)
@given(rows=image_rows, sort=sort_specs, limit=st.integers(1, 4))
def test_paging_visits_every_image_once_in_order(
    rows: list[tuple[str | None, int | None, int]], sort: list[tuple[str, str]], limit: int
) -> None:
    with _session() as session:
        images = [
            Image(
                id=str(uuid.uuid4()),
                name=name,
                size=size,
                status="active" if size else "queued",
                visibility="public",
                owner="p",
                min_disk=0,
                min_ram=0,
                protected=False,
                os_hidden=False,
                properties={},
                tags=[],
                created_at=T0 + dt.timedelta(seconds=offset),
                updated_at=T0,
            )
            for name, size, offset in rows
        ]
        session.add_all(images)
        session.flush()
        seen: list[str] = []
        marker = None
        for _ in range(len(rows) + 2):
            query = service.ListQuery(limit=limit, marker=marker, sort=sort)
            page = service.list_images(session, ADMIN, query)
            assert len(page.images) <= limit
            seen += [img.id for img in page.images]
            marker = page.next_marker
            if marker is None:
                break
        assert seen == _reference(images, sort)
