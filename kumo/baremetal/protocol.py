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
    """Body of `PUT /internal/v1/conductors/{name}`. `assignment`: the version of the assignment
    the conductor holds (the `assignment` of the last answer that carried `nodes`); absent or
    null after a (re)start, which always gets the whole list."""

    assignment: str | None = Field(default=None, max_length=64)


class ConductorAssignment(BaseModel):
    """The live conductors and the nodes this conductor owns now, with the assignment's version.

    `unchanged`: the version the conductor sent is still current; `nodes` is null and the
    conductor keeps the nodes it holds. Otherwise `nodes` is the whole assignment. The version
    covers what a conductor acts on (each node's uuid, name, driver, driver_info); the other
    fields are the node's state when the list was sent (a task's payload carries the current
    one)."""

    conductors: list[str]
    assignment: str | None = None
    unchanged: bool = False
    nodes: list[NodeForConductor] | None = None


class PowerStateReport(BaseModel):
    """node uuid → power state seen on the BMC; null when the BMC did not answer."""

    nodes: dict[str, PowerStateName | None] = Field(max_length=100_000)
