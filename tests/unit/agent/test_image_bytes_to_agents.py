"""The internal image file route counts what it sent (kumo_image_sent_to_agents_bytes_total): a chunk
once the server asks for the next one, so a download cut short counts what went out, not the size."""

from __future__ import annotations

from prometheus_client import REGISTRY

from kumo.agent import routes


def _sent() -> float:
    return REGISTRY.get_sample_value("kumo_image_sent_to_agents_bytes_total") or 0.0


def test_every_chunk_counts_once_it_was_handed_on() -> None:
    before = _sent()
    chunks = routes._counted(iter([b"ab", b"cde", b"f"]))
    assert next(chunks) == b"ab" and _sent() == before  # not yet written to the connection
    assert next(chunks) == b"cde" and _sent() == before + 2
    assert list(chunks) == [b"f"] and _sent() == before + 6


def test_a_download_cut_short_counts_what_was_sent() -> None:
    before = _sent()
    chunks = routes._counted(iter([b"abcd", b"efgh", b"ijkl"]))
    next(chunks)
    next(chunks)
    chunks.close()  # the client went away while the second chunk was being written
    assert _sent() == before + 4
