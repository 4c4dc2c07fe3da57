"""2.86: flavor extra specs checked against Nova's table of known specs (kumo/compute/
known_extra_specs.py) from 2.86 only; kumo's own resources/trait rules at every version."""

from __future__ import annotations

import pytest

from kumo.compute.flavors import parse_extra_specs
from kumo.compute.microversion import Microversion
from kumo.errors import BadRequest

BEFORE, AT = Microversion(2, 85), Microversion(2, 86)

CASES = [
    # (spec, value, accepted at 2.85, accepted at 2.86)
    ("hw:cpu_policy", "dedicated", True, True),
    ("hw:cpu_policy", "bogus", True, False),
    ("hw:numa_nodes", "2", True, True),
    ("hw:numa_nodes", "0", True, False),
    ("hw:numa_nodes", "two", True, False),
    ("hw:numa_cpus.0", "0-3,^2", True, True),
    ("hw:numa_cpus.0", "zero", True, False),
    ("hw:mem_page_size", "2MiB", True, True),
    ("hw:mem_page_size", "huge", True, False),
    ("hw:redirected_usb_ports", "16", True, False),
    ("hw:pmem", "GOLD,SILVER,", True, True),
    ("hw:pmem", ",GOLD", True, False),
    ("hw:pmem", "a" * 200 + "!", True, False),  # refused at once (no exponential backtracking)
    ("hw_rng:allowed", "yes", True, True),
    ("hw_rng:allowed", "maybe", True, False),
    ("hw:no_such_spec", "x", True, False),  # unknown in a known namespace
    ("quota:cpu_quota", "-1", True, True),
    ("quota:cpu_period", "-1", True, False),
    ("capabilities:cpu_info:features", "avx", True, True),
    ("aggregate_instance_extra_specs:ssd", "true", True, True),
    ("group_policy", "isolate", True, True),
    ("group_policy", "all", True, False),
    ("ssd", "anything", True, True),  # no namespace: any string
    ("mycompany:thing", "anything", True, True),  # an unknown namespace: any string
    ("resources:VCPU", "2", True, True),
    ("resources:VCPU", "-1", False, False),  # kumo's rule at every version
    ("trait:HW_CPU_X86_AVX2", "required", True, True),
]


@pytest.mark.parametrize(("key", "value", "before", "at"), CASES)
def test_known_extra_specs(key: str, value: str, before: bool, at: bool) -> None:
    for version, accepted in ((BEFORE, before), (AT, at)):
        body = {"extra_specs": {key: value}}
        if accepted:
            assert parse_extra_specs(body, version) == {key: value}
        else:
            with pytest.raises(BadRequest, match="Validation failed|Invalid input"):
                parse_extra_specs(body, version)
