"""Building a scheduling request from an instance's stored flavor: an amount that is not an
integer in placement's range is refused with a message naming the field or extra spec, and what
an instance's fault says of an error that stopped its scheduling."""

from __future__ import annotations

from typing import Any

import pytest

from kumo.compute.scheduling import fault_message, resources_of
from kumo.errors import BadRequest
from kumo.validation import MAX_INT


def flavor(**fields: Any) -> dict[str, Any]:
    specs = fields.pop("extra_specs", {})
    return {"vcpus": 2, "ram": 1024, "disk": 10, "ephemeral": 0, **fields, "extra_specs": specs}


@pytest.mark.parametrize(
    ("stored", "named"),
    [
        (flavor(extra_specs={"resources:VCPU": "abc"}), "extra spec resources:VCPU='abc'"),
        (flavor(extra_specs={"resources:VCPU": "-1"}), "extra spec resources:VCPU='-1'"),
        (flavor(extra_specs={"resources:VCPU": "1.5"}), "extra spec resources:VCPU='1.5'"),
        (flavor(extra_specs={"resources:VCPU": str(MAX_INT + 1)}), "resources:VCPU"),
        # the rule extra_specs.resource_amount checks on write, not int()'s
        (flavor(extra_specs={"resources:VCPU": " 7"}), "extra spec resources:VCPU=' 7'"),
        (flavor(extra_specs={"resources:VCPU": "1_0"}), "extra spec resources:VCPU='1_0'"),
        (flavor(extra_specs={"resources:VCPU": "\u0663"}), "extra spec resources:VCPU="),
        (flavor(extra_specs={"resources:VCPU": "--5"}), "extra spec resources:VCPU='--5'"),
        (flavor(extra_specs={"resources:VCPU": "1" * 5000}), "extra spec resources:VCPU="),
        (flavor(extra_specs={"resources:CUSTOM_GPU": None}), "extra spec resources:CUSTOM_GPU=None"),
        (flavor(extra_specs={"resources:CUSTOM_GPU": True}), "resources:CUSTOM_GPU=True"),
        (flavor(ram=2**40), f"ram={2**40}"),
        (flavor(vcpus="two"), "vcpus='two'"),
        (flavor(disk=None), "disk=None"),
        ({"ram": 512, "disk": 1}, "vcpus=None"),
    ],
)
def test_an_amount_out_of_placements_range_names_its_field(stored: dict[str, Any], named: str) -> None:
    with pytest.raises(BadRequest) as refused:
        resources_of(stored)
    assert named in refused.value.message
    assert str(MAX_INT) in refused.value.message


@pytest.mark.parametrize(
    ("specs", "resources"),
    [
        ({"resources:VCPU": "0"}, {"MEMORY_MB": 1024, "DISK_GB": 10}),
        ({"resources:VCPU": str(MAX_INT)}, {"VCPU": MAX_INT, "MEMORY_MB": 1024, "DISK_GB": 10}),
        ({"resources:CUSTOM_GPU": 1}, {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10, "CUSTOM_GPU": 1}),
    ],
)
def test_amounts_in_range_are_taken(specs: dict[str, Any], resources: dict[str, int]) -> None:
    assert resources_of(flavor(extra_specs=specs)) == resources


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            BadRequest("Invalid flavor extra spec resources:VCPU='abc'"),
            "Invalid flavor extra spec resources:VCPU='abc'",
        ),
        (KeyError("vcpus"), "KeyError: 'vcpus'"),
        (ValueError("bad hint"), "ValueError: bad hint"),
    ],
)
def test_fault_message(error: Exception, message: str) -> None:
    assert fault_message(error) == message
