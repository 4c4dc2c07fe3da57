"""The metadata service as an agent runs it: the responder on an event loop thread of its own
(the agent is threads), the edge cache in front of the internal API, and the (network, source)
map the data plane fills. The data plane calls `listen_socket` with each network's socket bound
inside its namespace on 169.254.169.254:80; tests and benchmarks `listen` on loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from kumo.metadata.cache import DEFAULT_MAX_ENTRIES, DEFAULT_TTL_SECONDS, BundleCache, Fetch
from kumo.metadata.client import ApiBundleSource
from kumo.metadata.responder import Responder
from kumo.metadata.sources import SourceMap

T = TypeVar("T")
log = logging.getLogger("kumo.metadata")


class MetadataService:
    def __init__(
        self,
        fetch: Fetch,
        ttl: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        sources: SourceMap | None = None,
    ) -> None:
        self.sources = sources or SourceMap()
        self.cache = BundleCache(fetch, ttl=ttl, max_entries=max_entries)
        self.responder = Responder(self.cache, self.sources)
        self._fetch = fetch
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kumo-metadata", daemon=True)

    @classmethod
    def from_api(
        cls,
        api_url: str,
        headers: Mapping[str, str],
        ttl: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        sources: SourceMap | None = None,
    ) -> MetadataService:
        """Bundles read from the API with the agent's credentials (its token header)."""
        return cls(ApiBundleSource(api_url, headers), ttl=ttl, max_entries=max_entries, sources=sources)

    def start(self) -> MetadataService:
        self._thread.start()
        return self

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def plug(self, network_id: str, address: str, instance_uuid: str) -> None:
        """A port's address is its instance's from now on; its bundle is read ahead, so the
        guest's first request (seconds later, once it has booted) finds it in the cache. What the
        data plane calls when it plugs a port."""
        self.sources.set(network_id, address, instance_uuid)
        asyncio.run_coroutine_threadsafe(self._warm(instance_uuid), self._loop)

    async def _warm(self, instance_uuid: str) -> None:
        try:
            await self.cache.get(instance_uuid)
        except Exception as exc:  # the guest's own request will read it again
            log.warning("metadata of instance %s not read ahead: %s", instance_uuid, exc)

    def is_cached(self, instance_uuid: str) -> bool:
        return self._run(self._is_cached(instance_uuid))

    async def _is_cached(self, instance_uuid: str) -> bool:
        return self.cache.fresh(instance_uuid) is not None

    def listen(self, network_id: str, host: str = "169.254.169.254", port: int = 80) -> tuple[str, int]:
        """Serve `network_id` on (host, port) (port 0: any free one); the address bound."""
        server = self._run(self.responder.listen(network_id, host, port))
        bound = server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    def listen_socket(self, network_id: str, sock: socket.socket) -> None:
        self._run(self.responder.listen_socket(network_id, sock))

    def stop_network(self, network_id: str) -> None:
        self._run(self.responder.stop_network(network_id))

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._run(self.responder.stop())
        close = getattr(self._fetch, "aclose", None)
        if close is not None:
            self._run(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
