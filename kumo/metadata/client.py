"""The responder's way to the API: an instance's bundle by the internal API
(`GET /internal/v1/instances/{uuid}/metadata`, with the agent's token)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from kumo.metadata.bundle import Bundle


class ApiBundleSource:
    """A `Fetch` for `BundleCache`: None when the API knows no such instance; raises
    httpx.HTTPError when the API cannot answer (the cache keeps nothing then)."""

    def __init__(
        self,
        api_url: str,
        headers: Mapping[str, str],
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 16,
    ) -> None:
        self.client = httpx.AsyncClient(
            base_url=api_url.rstrip("/") + "/internal/v1",
            headers=dict(headers),
            timeout=httpx.Timeout(timeout),
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def __call__(self, instance_uuid: str) -> Bundle | None:
        resp = await self.client.get(f"/instances/{instance_uuid}/metadata")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        # The metadata service never serves the server's admin password: like Nova, only the
        # config drive built at spawn carries it (any process in the guest can reach
        # 169.254.169.254, at any time); nor does it sit in the service's cache.
        return Bundle.model_validate_json(resp.content).model_copy(update={"admin_pass": None})

    async def aclose(self) -> None:
        await self.client.aclose()


def read_bundle(client: httpx.Client, instance_uuid: str) -> Bundle | None:
    """The bundle through a synchronous client of the internal API (an agent's `ApiLink.client`:
    its base URL ends in /internal/v1 and it carries the agent token), for a driver that builds
    a config drive (`kumo.metadata.configdrive.build`). None when the API knows no such
    instance."""
    resp = client.get(f"/instances/{instance_uuid}/metadata")
    if resp.status_code == 404:
        return None
    resp.raise_for_status()
    return Bundle.model_validate_json(resp.content)
