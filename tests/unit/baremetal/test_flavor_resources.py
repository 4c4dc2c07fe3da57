"""A baremetal flavor asks for one unit of a custom class and nothing else (Nova's semantics:
`resources:<CLASS>=N` extra specs override the flavor's own numbers, zero drops a class)."""

from __future__ import annotations

from typing import Any

from kumo.compute.scheduling import resources_of


def flavor(**specs: str) -> dict[str, Any]:
    return {"vcpus": 4, "ram": 8192, "disk": 100, "ephemeral": 0, "extra_specs": specs}


def test_a_vm_flavor_asks_for_its_numbers() -> None:
    assert resources_of(flavor()) == {"VCPU": 4, "MEMORY_MB": 8192, "DISK_GB": 100}


def test_a_baremetal_flavor_asks_for_one_node_only() -> None:
    specs = {
        "resources:CUSTOM_BM_SMALL": "1",
        "resources:VCPU": "0",
        "resources:MEMORY_MB": "0",
        "resources:DISK_GB": "0",
    }
    assert resources_of(flavor(**specs)) == {"CUSTOM_BM_SMALL": 1}


def test_overrides_replace_the_flavor_numbers() -> None:
    assert resources_of(flavor(**{"resources:VCPU": "2", "hw:cpu_policy": "shared"})) == {
        "VCPU": 2,
        "MEMORY_MB": 8192,
        "DISK_GB": 100,
    }
