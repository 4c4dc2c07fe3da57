"""Neutron attribute readers: an integer given as text is read by kumo's one rule, and a refusal
names the value that was sent."""

from __future__ import annotations

import pytest

from kumo.errors import KumoError
from kumo.network import attrs


@pytest.mark.parametrize(("sent", "read"), [(22, 22), ("22", 22), (" 443 ", 443)])
def test_integer_reads_numbers_and_integer_text(sent: object, read: int) -> None:
    assert attrs.integer(sent, "port_range_min", 1, 65535) == read


@pytest.mark.parametrize("sent", ["ssh", "", "2.5", True, 2.5, None])
def test_integer_refusal_names_what_was_sent(sent: object) -> None:
    with pytest.raises(KumoError) as refused:
        attrs.integer(sent, "port_range_min", 1, 65535)
    assert (
        refused.value.message == f"Invalid input for operation: '{sent}' is not an integer for port_range_min"
    )
