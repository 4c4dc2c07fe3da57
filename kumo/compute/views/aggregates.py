"""Aggregate bodies (uuid from 2.41; create answers without hosts and metadata)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kumo.compute.aggregates import UUID_VERSION, AggregateInfo
from kumo.compute.microversion import Microversion
from kumo.compute.views import isotime


def aggregate(info: AggregateInfo, mv: Microversion) -> dict[str, Any]:
    agg = info.aggregate
    body: dict[str, Any] = {
        "id": agg.id,
        "name": agg.name,
        "availability_zone": info.availability_zone,
        "hosts": list(info.hosts),
        "metadata": dict(agg.metadata_ or {}),
        "created_at": isotime(agg.created_at),
        "updated_at": isotime(agg.updated_at),
        "deleted_at": None,
        "deleted": False,
    }
    if mv.at_least(UUID_VERSION):
        body["uuid"] = agg.uuid
    return body


def show(info: AggregateInfo, mv: Microversion) -> dict[str, Any]:
    return {"aggregate": aggregate(info, mv)}


def created(info: AggregateInfo, mv: Microversion) -> dict[str, Any]:
    body = aggregate(info, mv)
    del body["hosts"], body["metadata"]
    return {"aggregate": body}


def index(infos: Sequence[AggregateInfo], mv: Microversion) -> dict[str, Any]:
    return {"aggregates": [aggregate(i, mv) for i in infos]}
