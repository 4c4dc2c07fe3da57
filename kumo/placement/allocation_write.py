"""A write of one consumer's allocations, as Placement's API and the store seam pass it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass
class AllocationWrite:
    consumer: str
    allocations: Mapping[str, Mapping[str, int]]  # provider uuid -> resource class -> amount
    project_id: str | None = None
    user_id: str | None = None
    generation: int | None = None
    check_generation: bool = False  # microversion >= 1.28
