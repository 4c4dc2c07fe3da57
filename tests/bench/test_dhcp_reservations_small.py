"""bench/dhcp_reservations.py at CI size (1,000 reservations): every measured addition is served
by the same dnsmasq without a signal, every removal sends no signal at all, a new MAC taking a
removed reservation's address costs one SIGHUP and is then offered it, and nothing restarts
dnsmasq (the bench asserts all of it as it goes); the figures are consistent. Needs root and
scripts/install-network; skips saying why otherwise."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from bench import dhcp_reservations

pytestmark = pytest.mark.bench


def test_thousand_reservations(capsys: pytest.CaptureFixture[str]) -> None:
    reason = dhcp_reservations.unusable_reason()
    if reason:
        pytest.skip(f"bench/dhcp_reservations.py: {reason}")
    # The flake of some full-suite runs ("the prober exited 0 without a result") was the bench
    # reading the prober's result with communicate() after its "ready" line through the buffered
    # stdout: a result that arrived with "ready" sat in that buffer and was lost (fixed in
    # bench/dhcp_reservations.py's last_row). One more run from scratch stays, the first failure
    # printed; a second failure fails the test.
    try:
        assert dhcp_reservations.main(["--sizes", "1000", "--repeat", "2"]) == 0
    except (AssertionError, IndexError) as first:
        print(f"test_thousand_reservations: first run failed ({first!r}); running once more", file=sys.stderr)
        capsys.readouterr()
        assert dhcp_reservations.main(["--sizes", "1000", "--repeat", "2"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))
    row: dict[str, Any] = json.loads(line)
    assert row["reservations"] == 1000 and row["repeat"] == 2
    assert row["dnsmasq_restarted_by_changes"] is False
    assert row["removals_reloaded"] is False and row["collisions_reloaded"] is True
    # Served from the file's rename, via inotify (about a DHCP client retry, 1 s, on a quiet
    # machine); the bound is generous for a shared 2-core CI machine but still catches a hang.
    assert 0 < row["add_to_offer_max_ms"] < 10_000
    assert row["remove_deaf_ms"] >= 0 and row["collision_deaf_ms"] >= 0 and row["restart_deaf_ms"] > 0
    assert row["remove_deaf_max_ms"] <= 10_000 and row["collision_deaf_max_ms"] <= 10_000
