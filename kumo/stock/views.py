"""Stock request bodies (os-kumo-stock-requests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kumo.stock.models import StockRequest


def _time(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def stock_request(row: StockRequest) -> dict[str, Any]:
    return {
        "id": row.uuid,
        "project_id": row.project_id,
        "user_id": row.user_id,
        "flavor_id": row.flavor_id,
        "count": row.count,
        "reason": row.reason,
        "status": row.status,
        "decided_by": row.decided_by,
        "decision_reason": row.decision_reason,
        "hosts": list(row.hosts or []),
        "aggregate": row.aggregate,
        "created_at": _time(row.created_at),
        "updated_at": _time(row.updated_at),
    }


def show(row: StockRequest) -> dict[str, Any]:
    return {"stock_request": stock_request(row)}


def index(rows: Sequence[StockRequest]) -> dict[str, Any]:
    return {"stock_requests": [stock_request(r) for r in rows]}
