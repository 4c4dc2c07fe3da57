"""`kumo hosts apply` through the real command against a cloud with one agent host: enrolls
baremetal nodes (fake-hardware driver) through /baremetal, labels hosts, builds aggregates;
dry run first, idempotent second apply, removals only with --prune. Checked with the
unmodified openstack CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.cli.conftest import OpenStackCLI
from tests.cli.kumo_cli import kumo
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.baremetal.standin import StandInConductor


def _node(name: str, rack: str) -> dict[str, Any]:
    return {
        "name": name,
        "driver": "fake-hardware",
        "resource_class": "baremetal.small",
        "properties": {"cpus": 8, "memory_mb": 16384, "local_gb": 100, "rack": rack, "region": "RegionOne"},
        "provision_state": "available",
    }


INVENTORY: dict[str, Any] = {
    "nodes": [_node("bm-r1-01", "r1"), _node("bm-r2-01", "r2")],
    "hosts": [{"name": "h1", "rack": "r1", "region": "RegionOne"}],
    "aggregates": [
        {
            "name": "bm.small",
            "metadata": {"baremetal": "true", "bm.small": "true"},
            "hosts": ["bm-r1-01", "bm-r2-01"],
        },
        {"name": "vm-az1", "availability_zone": "az1", "hosts": ["h1"]},
    ],
}


def _write(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _labels(cloud: Cloud) -> dict[str, tuple[str | None, str | None]]:
    with cloud.client() as c:
        rows = c.get("/compute/v2.1/os-kumo-host-labels").json()["host_labels"]
    return {r["host"]: (r["rack"], r["region"]) for r in rows}


def test_apply_dry_run_idempotence_and_prune(
    cloud: Cloud, fleet: Fleet, osc: OpenStackCLI, tmp_path: Path
) -> None:
    fleet.add("h1")
    conductor = StandInConductor(cloud.url, cloud.settings.secret("agent_token")).start()
    try:
        _apply_dry_run_idempotence_and_prune(cloud, osc, tmp_path)
    finally:
        conductor.stop()
    kinds = sorted({t["kind"] for t in conductor.seen})
    assert kinds == ["node_clean", "node_verify"]  # manage, then provide, for each node


def _apply_dry_run_idempotence_and_prune(cloud: Cloud, osc: OpenStackCLI, tmp_path: Path) -> None:
    wait_for(lambda: "h1" in _labels(cloud))
    inventory = _write(tmp_path, INVENTORY)

    dry = kumo(osc, "hosts", "apply", inventory, "--dry-run").stdout
    assert "+ node bm-r1-01: create" in dry and "+ aggregate vm-az1: create" in dry
    assert "~ node bm-r1-01: provision (target=available, steps=manage+provide)" in dry
    assert "~ host h1: set_labels (host=h1, rack=r1, region=RegionOne)" in dry
    assert "dry run, nothing applied" in dry
    assert osc.run("aggregate", "list") == [] and osc.run("baremetal", "node", "list") == []

    applied = kumo(osc, "hosts", "apply", inventory).stdout
    assert "Applied" in applied
    listed = osc.run("baremetal", "node", "list")
    assert {n["provision_state"] for n in listed} == {"available"}
    nodes = {n["name"]: n["uuid"] for n in listed}
    assert set(nodes) == {"bm-r1-01", "bm-r2-01"}
    assert sorted(osc.run("aggregate", "show", "bm.small")["hosts"]) == sorted(nodes.values())
    vm = osc.run("aggregate", "show", "vm-az1")
    assert (vm["hosts"], vm["availability_zone"]) == (["h1"], "az1")
    labels = _labels(cloud)
    assert labels["h1"] == ("r1", "RegionOne")
    assert labels[nodes["bm-r2-01"]] == ("r2", "RegionOne")  # from the node's properties

    assert kumo(osc, "hosts", "apply", inventory).stdout.strip() == "No changes."

    # Dropped from the file: kept until --prune.
    smaller = {
        **INVENTORY,
        "nodes": INVENTORY["nodes"][:1],
        "aggregates": [{**INVENTORY["aggregates"][0], "hosts": ["bm-r1-01"]}],
    }
    inventory = _write(tmp_path, smaller)
    assert kumo(osc, "hosts", "apply", inventory).stdout.strip() == "No changes."
    dry = kumo(osc, "hosts", "apply", inventory, "--prune", "--dry-run").stdout
    assert f"- aggregate bm.small: remove_host (host={nodes['bm-r2-01']})" in dry
    assert "- aggregate vm-az1: delete" in dry and "- node bm-r2-01: delete" in dry
    kumo(osc, "hosts", "apply", inventory, "--prune")
    assert [n["name"] for n in osc.run("baremetal", "node", "list")] == ["bm-r1-01"]
    assert [a["Name"] for a in osc.run("aggregate", "list")] == ["bm.small"]
    assert osc.run("aggregate", "show", "bm.small")["hosts"] == [nodes["bm-r1-01"]]
    assert kumo(osc, "hosts", "apply", inventory, "--prune").stdout.strip() == "No changes."


def test_invalid_inventory_is_refused_before_any_call(osc: OpenStackCLI, tmp_path: Path) -> None:
    bad = kumo(osc, "hosts", "apply", _write(tmp_path, {"servers": []}), check=False)
    assert bad.returncode == 2 and "unknown sections" in bad.stderr
