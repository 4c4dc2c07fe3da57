"""Flavor extra specs validated on write (kumo/compute/extra_specs.py), as Nova does."""

from __future__ import annotations

import pytest

from kumo.compute import extra_specs
from kumo.errors import BadRequest


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("resources:VCPU", "2", "2"),
        ("resources:VCPU", 2, "2"),
        ("resources:DISK_GB", "0", "0"),
        ("resources:MEMORY_MB", "2147483647", "2147483647"),
        ("resources:CUSTOM_GPU_A100", "1", "1"),
        ("resources1:VGPU", "1", "1"),
        ("resources_gpu:VGPU", "1", "1"),
        ("trait:HW_CPU_X86_AVX2", "required", "required"),
        ("trait:CUSTOM_RACK_A", "forbidden", "forbidden"),
        ("trait2:STORAGE_DISK_SSD", "required", "required"),
        ("aggregate_instance_extra_specs:ssd", "true", "true"),
        ("aggregate_instance_extra_specs:ssd", True, "True"),
        ("hw:cpu_policy", "dedicated", "dedicated"),
        ("quota:disk_read_bytes_sec", "10240000", "10240000"),
        ("plain", "", ""),
    ],
)
def test_accepted(key: str, value: object, stored: str) -> None:
    assert extra_specs.validate_spec(key, value) == stored


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("resources:VCPU", "abc", "not a valid integer"),
        ("resources:VCPU", "-1", "not a valid integer"),
        ("resources:VCPU", "1.5", "not a valid integer"),
        ("resources:VCPU", "\u00b2", "not a valid integer"),
        ("resources:VCPU", " 2", "not a valid integer"),
        ("resources:VCPU", "2147483648", "less than or equal to 2147483647"),
        ("resources:VCPU", 1e20, "not a valid integer"),
        ("resources:NOT_A_CLASS", "1", "not a standard or CUSTOM_\\* resource class"),
        ("resources:custom_gpu", "1", "resource class"),
        ("resources:", "1", "resource class"),
        ("trait:HW_CPU_X86_AVX2", "maybe", "must be one of required, forbidden"),
        ("trait:HW_CPU_X86_AVX2", "Required", "must be one of"),
        ("trait:NOT_A_TRAIT", "required", "not a standard or CUSTOM_\\* trait"),
        ("trait:", "required", "trait"),
        ("aggregate_instance_extra_specs:ssd", ["true"], "not of type 'string'"),
        ("hw:cpu_policy", {"a": 1}, "not of type 'string'"),
        ("hw:cpu_policy", None, "not of type 'string'"),
        ("hw:cpu_policy", "a\x01b", "must be printable"),
        ("hw:cpu_policy", "a\nb", "must be printable"),
        ("quota:x", "v" * 256, "too long"),
        ("k" * 256, "v", "Does not match pattern"),
        ("bad/key", "v", "Does not match pattern"),
        ("hw:key\n", "v", "Does not match pattern"),
        ("", "v", "Does not match pattern"),
    ],
)
def test_refused(key: str, value: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        extra_specs.validate_spec(key, value)


def test_validate_specs_returns_strings_and_stops_at_the_first_bad_one() -> None:
    assert extra_specs.validate_specs({"resources:VCPU": 4, "hw:x": "y"}) == {
        "resources:VCPU": "4",
        "hw:x": "y",
    }
    with pytest.raises(BadRequest, match="resources:VCPU"):
        extra_specs.validate_specs({"hw:x": "y", "resources:VCPU": "x"})
