"""The scheduling core: a pure function from (request, snapshot) to a ranked decision.

Loading the snapshot (kumo.compute.fleet_snapshot) and committing the claim (kumo.placement.claims)
are the only I/O around it.
"""

from kumo.scheduler.core import Candidate, Decision, Rejection, schedule, schedule_batch
from kumo.scheduler.request import GroupSpec, ScheduleRequest
from kumo.scheduler.snapshot import HostState, Snapshot
from kumo.scheduler.weighers import SchedulerConfig

__all__ = [
    "Candidate",
    "Decision",
    "GroupSpec",
    "HostState",
    "Rejection",
    "ScheduleRequest",
    "SchedulerConfig",
    "Snapshot",
    "schedule",
    "schedule_batch",
]
