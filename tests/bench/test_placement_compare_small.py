"""bench/placement_compare.py at CI size: 50 providers, the whole pipeline against upstream
Placement (installed from PyPI into .bench-venvs/placement on first use, about 45 s) and kumo,
both on PostgreSQL. Checks correctness (identical candidate sets and summaries, valid claims),
not speed: at this size and on a shared CI machine the figures mean nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import placement_compare as pc

pytestmark = [pytest.mark.bench, pytest.mark.postgres]


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    if not pc.pg_available(pc.DEFAULT_PG):
        pytest.skip(f"PostgreSQL is not reachable at {pc.DEFAULT_PG}")
    try:
        env = pc.ensure_upstream()
    except Exception as exc:  # no PyPI, or a broken wheel: say so rather than fail kumo's suite
        pytest.skip(f"upstream openstack-placement could not be installed from PyPI: {exc}")
    return pc.run_size(50, env, repeat=3, limit=20, claims=60, concurrency=4, batch=25, kumo_workers=1)


def test_both_systems_see_the_same_fleet(report: dict[str, Any]) -> None:
    assert report["fleet_views_identical"]
    assert "gunicorn" in report["servers"]["upstream"] or "wsgiref" in report["servers"]["upstream"]


@pytest.mark.parametrize("query", ["resources", "member_of", "required"])
def test_candidate_sets_match_upstream(report: dict[str, Any], query: str) -> None:
    q = report["queries"][query]
    assert q["full"]["kumo"]["candidates"] > 0
    assert q["identical"], (q["only_kumo"], q["only_upstream"])
    assert q["summary_mismatches"] == []
    # limit=20 is below the full set here: each page is a subset of the other system's full set.
    assert q["page"]["kumo"]["candidates"] == min(20, q["full"]["upstream"]["candidates"])
    assert q["page_subset"] == {"kumo": True, "upstream": True}
    assert q["page"]["kumo"]["p50_ms"] > 0 and q["page"]["upstream"]["p50_ms"] > 0


def test_filters_narrow_the_set(report: dict[str, Any]) -> None:
    full = {name: q["full"]["kumo"]["candidates"] for name, q in report["queries"].items()}
    assert full["member_of"] < full["resources"]
    assert full["required"] < full["resources"]


def test_claims_all_succeed_and_agree(report: dict[str, Any]) -> None:
    claims = report["claims"]
    for system in ("kumo", "upstream"):
        assert claims[system]["statuses"] == {"204": 60}, claims[system]
        assert claims[system]["per_second"] > 0 and claims[system]["floor_per_second"] > 0
        cpu = claims[system]["cpu_ms_per_claim"]  # the server's and its database backends' CPU
        assert cpu["server"] > 0 and cpu["postgresql"] >= 0, cpu  # 60 claims: a few clock ticks
    assert claims["usages_identical_after"]


def test_batched_claims_all_succeed_and_agree(report: dict[str, Any]) -> None:
    """The extra row: POST /allocations with 25 consumers per request (60 claims: 3 requests)."""
    batched = report["claims"]["batched"]
    for system in ("kumo", "upstream"):
        assert batched[system]["requests"] == 3
        assert batched[system]["statuses"] == {"204": 3}, batched[system]
        assert batched[system]["per_second"] > 0
    assert batched["usages_identical_after"]


def test_docs_section_is_replaced_not_appended(tmp_path: Path, report: dict[str, Any]) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text(
        "# Benchmarks\n\n## Density\n\nkeep me\n\n## Placement side by side\n\nold\n\n## Later\n\nme too\n"
    )
    full = {
        "command": "test",
        "date": "now",
        "machine": {**pc.machine(), "load_average_end": [0.0, 0.0, 0.0]},
        "postgresql": "15",
        "upstream": report["servers"]["upstream"],
        "kumo": report["servers"]["kumo"],
        "repeat": 3,
        "sizes": [report],
    }
    pc.write_docs(docs, pc.markdown(full))
    pc.write_docs(docs, pc.markdown(full))
    text = docs.read_text()
    assert text.count(pc.SECTION) == 1
    assert "keep me" in text and "me too" in text and "\nold\n" not in text
    assert text.index("## Density") < text.index(pc.SECTION) < text.index("## Later")
    assert "| 50 |" in text
