"""The internal agent ↔ API protocol (JSON over HTTP), shared by both sides."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from kumo.validation import MAX_INT

AGENT_TOKEN_HEADER = "X-Kumo-Agent-Token"


class HostReport(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    vcpus: int = Field(ge=0)
    memory_mb: int = Field(ge=0)
    disk_gb: int = Field(ge=0)
    hypervisor_type: str = "fake"
    host_ip: str = "127.0.0.1"
    cpu_allocation_ratio: float = 16.0
    ram_allocation_ratio: float = 1.5
    disk_allocation_ratio: float = 1.0
    reserved_memory_mb: int = 512
    # Failure-domain labels (`kumo agent --rack R --region G`); None keeps what the host has.
    rack: str | None = Field(default=None, max_length=255)
    region: str | None = Field(default=None, max_length=255)


class TaskOut(BaseModel):
    id: str
    kind: str
    instance_uuid: str | None
    payload: dict[str, Any]
    request_id: str | None


class Poll(BaseModel):
    """A long poll for work: `busy` lists tasks the agent already runs (they stay pending in
    the database until reported, so a restarted agent, which is busy with nothing, gets them
    all again)."""

    wait: float = Field(default=0.0, ge=0.0)
    busy: list[str] = Field(default_factory=list)


class TaskList(BaseModel):
    tasks: list[TaskOut]


class FleetPoll(Poll):
    """A long poll for work on any of several hosts, from one process that serves them all (a
    baremetal conductor; `kumo bench density`'s simulated fleet). Thousands of hosts then cost
    one connection instead of one long poll each."""

    hosts: list[str] = Field(min_length=1, max_length=100_000)


class FleetHeartbeat(BaseModel):
    """Heartbeats of many hosts in one call, from one process that serves them all (a
    simulated fleet; any agent process hosting several hosts)."""

    hosts: list[str] = Field(min_length=1, max_length=100_000)


class FleetHeartbeatResult(BaseModel):
    unknown: list[str]  # hosts the API does not know (deleted): their agents re-register


class HostTask(TaskOut):
    host: str


class FleetTaskList(BaseModel):
    tasks: list[HostTask]


class TaskResult(BaseModel):
    ok: bool
    power_state: int | None = None
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class TaskReport(TaskResult):
    task_id: str


class TaskReports(BaseModel):
    """Results of several tasks in one call, settled in order in one transaction."""

    results: list[TaskReport] = Field(max_length=1000)


class PowerStates(BaseModel):
    """instance uuid → power state, as the hypervisor sees it."""

    states: dict[str, int]


class GuestCpu(BaseModel):
    """One guest's smoothed CPU rates (kumo.agent.cpu_signal), in cores."""

    vcpus: int = Field(ge=1, le=4096)
    run_cores: float = Field(ge=0, le=1e6)
    delay_cores: float = Field(ge=0, le=1e6)


MAX_SIGNAL_GUESTS = 4096


class CpuSignal(BaseModel):
    """A host's CPU signal: its cores for guests, load average, and every guest's rates (at
    most MAX_SIGNAL_GUESTS guests, keyed by server UUID: at most 36 characters)."""

    cores: float = Field(ge=0, le=1e6)
    load1: float = Field(ge=0, le=1e6)
    guests: dict[Annotated[str, StringConstraints(min_length=1, max_length=36)], GuestCpu] = Field(
        max_length=MAX_SIGNAL_GUESTS
    )


class ImagePeerReport(BaseModel):
    """Where an agent serves its cached images to peers (kumo/agent/precache.py)."""

    url: str = Field(min_length=1, max_length=300)


class ImageCacheReport(BaseModel):
    """The images a host holds as verified copies in its image cache (ids only)."""

    images: list[Annotated[str, StringConstraints(min_length=1, max_length=36)]] = Field(max_length=10000)


class TicketRequest(BaseModel):
    """A receiver asks for a ticket to fetch `image_id` from `sender`'s peer endpoint."""

    image_id: str = Field(min_length=1, max_length=36)
    sender: str = Field(min_length=1, max_length=255)
    receiver: str = Field(min_length=1, max_length=255)


MAX_BIGINT = 2**63 - 1  # a BigInteger column's largest value


class PrecacheProgress(BaseModel):
    """A precache copy in flight: its bytes so far, from `source`."""

    job_id: str = Field(min_length=1, max_length=36)
    image_id: str = Field(min_length=1, max_length=36)
    host: str = Field(min_length=1, max_length=255)
    source: str = Field(min_length=1, max_length=300)
    bytes: int = Field(ge=0, le=MAX_BIGINT)  # its column's range: beyond it a 400, not the database's error
    # the copy's attempt (its payload's): a report of an earlier attempt is stale (409)
    attempt: int | None = Field(default=None, ge=1, le=MAX_INT)
