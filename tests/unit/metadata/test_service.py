"""MetadataService on its own loop thread: a plugged port's instance is read ahead, once, so
the guest's first request is a hit; over real HTTP on loopback."""

from __future__ import annotations

import time

import httpx

from kumo.metadata.bundle import Bundle
from kumo.metadata.service import MetadataService
from tests.unit.metadata.builders import UUID, bundle


def test_plug_reads_ahead_and_the_first_request_is_a_hit() -> None:
    reads: list[str] = []

    async def fetch(uuid: str) -> Bundle | None:
        reads.append(uuid)
        return bundle()

    service = MetadataService(fetch, ttl=15).start()
    try:
        host, port = service.listen("n", "127.0.0.1", 0)
        service.plug("n", "127.0.0.1", UUID)
        deadline = time.monotonic() + 5
        while not service.is_cached(UUID) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reads == [UUID]
        answer = httpx.get(f"http://{host}:{port}/latest/meta-data/instance-id", timeout=5)
        assert (answer.status_code, answer.text) == (200, "i-0000002a") and reads == [UUID]
        service.stop_network("n")
    finally:
        service.stop()
