"""(network, source address) → instance: the map the data plane fills."""

from __future__ import annotations

from kumo.metadata.sources import SourceMap


def test_set_lookup_remove() -> None:
    sources = SourceMap()
    sources.set("n1", "10.0.0.5", "vm-a")
    sources.set("n2", "10.0.0.5", "vm-b")  # the same address on another network
    assert sources.lookup("n1", "10.0.0.5") == "vm-a"
    assert sources.lookup("n2", "10.0.0.5") == "vm-b"
    assert sources.lookup("n1", "::ffff:10.0.0.5") == "vm-a"
    assert sources.lookup("n3", "10.0.0.5") is None
    sources.remove("n1", "10.0.0.5")
    assert sources.lookup("n1", "10.0.0.5") is None and len(sources) == 1
    sources.set("n1", "10.0.0.6", "vm-b")
    sources.remove_instance("vm-b")
    assert len(sources) == 0
