"""Issue 15 through the real openstack CLI: a flavor extra spec the scheduler could not read is
refused on write with Nova's 400 and its message; a valid one is stored."""

from __future__ import annotations

import pytest

from tests.cli.conftest import CLIError, OpenStackCLI


def test_flavor_set_refuses_bad_resource_and_trait_specs(osc: OpenStackCLI) -> None:
    osc.run("flavor", "create", "--vcpus", "1", "--ram", "64", "--disk", "1", "spec-check")
    for prop, message in (
        ("resources:VCPU=abc", "is not a valid integer value"),
        ("resources:NOT_A_CLASS=1", "is not a standard or CUSTOM_* resource class"),
        ("trait:HW_CPU_X86_AVX2=maybe", "must be one of required, forbidden"),
    ):
        with pytest.raises(CLIError) as refused:
            osc.run("flavor", "set", "--property", prop, "spec-check", json=False)
        assert "BadRequestException: 400" in refused.value.stderr and message in refused.value.stderr
    osc.run("flavor", "set", "--property", "resources:VCPU=2", "spec-check", json=False)
    shown = osc.run("flavor", "show", "spec-check")
    assert shown["properties"] == {"resources:VCPU": "2"}
