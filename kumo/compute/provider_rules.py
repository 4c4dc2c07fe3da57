"""Compute's rules about Placement's resource providers, registered with placement at start-up
(kumo.app): placement stands below compute and imports none of it."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from kumo.compute.models import ComputeHost
from kumo.placement.api.providers import keep_providers_in_use


def host_provider_in_use(session: Session, provider_id: int) -> str | None:
    """A registered compute host's provider is deleted with its host, never through Placement."""
    if session.execute(select(exists().where(ComputeHost.provider_id == provider_id))).scalar():
        return "it is a registered compute host"
    return None


def register() -> None:
    keep_providers_in_use("compute host", host_provider_in_use)
