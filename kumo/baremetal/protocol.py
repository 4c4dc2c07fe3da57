"""The conductor ↔ API protocol (JSON over HTTP, /internal/v1/conductors), shared by both sides.
Work itself goes through the agents' fleet poll and results (kumo/agent/protocol.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

PowerStateName = Literal["power on", "power off"]


class NodeForConductor(BaseModel):
    """What a conductor needs to drive a node's BMC (driver_info carries the credentials)."""

    uuid: str
    name: str | None = None
    driver: str
    driver_info: dict[str, Any] = Field(default_factory=dict)
    power_state: str | None = None
    provision_state: str
    maintenance: bool = False
    instance_uuid: str | None = None


class ConductorHeartbeat(BaseModel):
    """Body of `PUT /internal/v1/conductors/{name}`: nothing yet (room for capabilities)."""


class ConductorAssignment(BaseModel):
    """The live conductors and the nodes this conductor owns now."""

    conductors: list[str]
    nodes: list[NodeForConductor]


class PowerStateReport(BaseModel):
    """node uuid → power state seen on the BMC; null when the BMC did not answer."""

    nodes: dict[str, PowerStateName | None] = Field(max_length=100_000)
