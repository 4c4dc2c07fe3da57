"""JSON Schema of the os-kumo-stock-requests bodies (see `routes.py`), for the OpenAPI document."""

from __future__ import annotations

from kumo.api.openapi import Schema, obj, one_action
from kumo.stock.service import MAX_COUNT

STOCK_REQUEST_CREATE: Schema = obj(
    {
        "stock_request": obj(
            {
                "flavor": {"type": "string", "minLength": 1, "maxLength": 255},
                "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
                "reason": {"type": "string", "minLength": 1, "maxLength": 1024},
            },
            ["flavor", "count", "reason"],
        )
    },
    ["stock_request"],
)
STOCK_REQUEST_ACTION: Schema = one_action(
    {
        "approve": {"type": "null"},
        "reject": obj({"reason": {"type": "string", "minLength": 1, "maxLength": 1024}}, ["reason"]),
    }
)
