"""The CI-sized selection of OpenStack's public conformance suite (tempest, from PyPI) against a
kumo cloud: conformance/tempest-ci.txt, run by conformance/tempest.py exactly as an operator runs
it against `kumo up` (tempest in a virtualenv of its own, .tempest-venv, made on first use). The
full run's counts are in docs/compatibility.md."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import tempest
from tests.conftest import ADMIN_PASSWORD, Cloud, Fleet


@pytest.fixture
def hypervisors(cloud: Cloud) -> Iterator[Fleet]:
    """Two roomy fake hypervisors (tempest's multi-node tests want min_compute_nodes = 2)."""
    fleet = Fleet(cloud)
    for index in range(2):
        fleet.add(f"tempest-{index}", vcpus=64, memory_mb=65536, disk_gb=2000)
    yield fleet
    fleet.stop()


def test_the_ci_selection_passes(cloud: Cloud, hypervisors: Fleet, tmp_path: Path) -> None:
    bin_dir = tempest.ensure_tempest(tempest.ROOT / ".tempest-venv")
    values = tempest.prepare_cloud(cloud.url, ADMIN_PASSWORD)
    workspace = tmp_path / "tempest"
    conf = tempest.write_workspace(
        bin_dir, workspace, cloud.url, ADMIN_PASSWORD, cloud.settings.region, tempest.FEATURES, values
    )
    report = tempest.run(bin_dir, workspace, conf, tempest.SELECTIONS["ci"], concurrency=2)
    assert not report.failed, report.summary()
    # every selected class ran: a selection that stopped matching (a renamed test) is a failure too
    assert len(report.passed) >= 80, report.summary()
    assert values["max_microversion"] == "2.96"
