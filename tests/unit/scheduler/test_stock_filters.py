"""Stock filters: filter_flavor_id aggregates and private stock exclusivity (kumo.stock)."""

from __future__ import annotations

import pytest

from kumo.scheduler import filters as f
from kumo.scheduler import schedule

from .builders import make_host, make_request, make_snapshot

PUBLIC = {"baremetal": "true", "filter_flavor_id": "bm1", "bm.small": "true"}
PRIVATE_P1 = {**PUBLIC, "filter_tenant_id": "p1"}
VM = {"availability_zone": "az1"}
P1_BM1 = frozenset({("p1", "bm1")})


@pytest.mark.parametrize(
    ("metadata", "project", "flavor", "private", "rejects"),
    [
        (PUBLIC, "p1", "bm1", frozenset(), None),  # setting off, or no private stock at all
        (PUBLIC, "p1", "bm1", P1_BM1, f.PUBLIC_STOCK_CLOSED),
        (PUBLIC, "p1", "bm2", P1_BM1, None),  # p1's private stock is of another flavor
        (PUBLIC, "p1", "bm2", frozenset({("p1", "*")}), f.PUBLIC_STOCK_CLOSED),  # private stock of any flavor
        (PUBLIC, "p2", "bm1", P1_BM1, None),  # p2 has no private stock
        (PRIVATE_P1, "p1", "bm1", P1_BM1, None),
        (VM, "p1", "bm1", P1_BM1, None),  # VM hosts are not stock
        ({**PUBLIC, "baremetal": "True"}, "p1", "bm1", P1_BM1, f.PUBLIC_STOCK_CLOSED),
    ],
)
def test_stock_filter(
    metadata: dict[str, str],
    project: str,
    flavor: str,
    private: frozenset[tuple[str, str]],
    rejects: str | None,
) -> None:
    host = make_host("n1").aggregate(metadata).build()
    snapshot = make_snapshot(host, private_stock=private)
    result = f.stock_filter(host, make_request(project_id=project, flavor_id=flavor), snapshot)
    assert (result.ok, result.reason) == ((True, "") if rejects is None else (False, rejects))


def test_private_stock_isolation_both_ways() -> None:
    """p1 lands only in its private stock; p2 never lands there."""
    snapshot = make_snapshot(
        make_host("pub").aggregate(PUBLIC),
        make_host("priv").aggregate(PRIVATE_P1),
        private_stock=P1_BM1,
    )
    assert schedule(make_request(project_id="p1", flavor_id="bm1"), snapshot).hosts == ["priv"]
    assert schedule(make_request(project_id="p2", flavor_id="bm1"), snapshot).hosts == ["pub"]
    other_flavor = schedule(make_request(project_id="p2", flavor_id="bm2"), snapshot)
    assert not other_flavor.ok
    assert other_flavor.removed_by("AggregateFlavorFilter") == 1  # priv: tenant isolation first
