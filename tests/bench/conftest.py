"""Registers the `bench` marker (CI-size runs of the benchmarks in bench/)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bench: a CI-size run of a benchmark in bench/")
