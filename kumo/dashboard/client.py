"""The dashboard's way into kumo: plain HTTP calls to the public APIs with the signed-in user's
own token, so the dashboard may do exactly what the API lets that user do. Every call carries
the dashboard request's id (X-Openstack-Request-Id), so the API log shows a page's calls under
the id of the page. Errors come back as `APIError` holding the API's own message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from kumo.apiclient import APIError, error_message

# The compute microversion the dashboard reads: servers embed their flavor (name, extra specs).
# (2.53+: os-services and a hypervisor's service are named by uuid, and PUT takes status/reason.)
COMPUTE_VERSION = "compute 2.64"
# Watcher (the rebalancer) and Ironic read their own microversion headers.
WATCHER_VERSION = {"OpenStack-API-Version": "infra-optim 1.5"}
IRONIC_VERSION = {"X-OpenStack-Ironic-API-Version": "1.65"}
TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def body_or_raise(resp: httpx.Response) -> Any:
    """The JSON body of a success; an APIError with the API's message otherwise."""
    try:
        data = resp.json() if resp.content else None
    except ValueError:
        data = None
    if resp.status_code >= 400:
        if isinstance(data, dict) and isinstance(data.get("message"), str):  # Glance's JSON error
            message = data["message"].split("<br />")[0].strip()  # webob's body template trails it
        else:
            message = error_message(data, resp.text.strip() or resp.reason_phrase)
        raise APIError(resp.status_code, message)
    return data


@dataclass
class Token:
    """What POST /identity/v3/auth/tokens answered: the token and the body's scope."""

    id: str
    user_id: str
    user_name: str
    project_id: str
    project_name: str
    roles: list[str] = field(default_factory=list)


def _token(resp: httpx.Response) -> Token:
    body = body_or_raise(resp)["token"]
    project = body.get("project") or {}
    return Token(
        id=resp.headers["X-Subject-Token"],
        user_id=body["user"]["id"],
        user_name=body["user"]["name"],
        project_id=project.get("id", ""),
        project_name=project.get("name", ""),
        roles=[r["name"] for r in body.get("roles", [])],
    )


def _scope(project: str, domain: str) -> dict[str, Any]:
    if not project:
        return {}
    return {"scope": {"project": {"name": project, "domain": {"id": domain}}}}


def unreachable(base_url: str, exc: httpx.HTTPError) -> APIError:
    """The API could not be asked at all (refused, timed out): a 502 with what went wrong."""
    return APIError(502, f"The API at {base_url} could not be reached: {exc.__class__.__name__}: {exc}")


def own_url(scheme: str, server: tuple[str, int | None] | None) -> str:
    """The URL of the server a request reached, from its ASGI scope's `server` (the socket's own
    address: a wildcard listener still reports the address the connection arrived at)."""
    if server is None or server[1] is None:  # no address, or a Unix socket's path
        raise APIError(500, "The dashboard cannot tell its API's address: set KUMO_DASHBOARD_API_URL.")
    host, port = server
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}"


def connection_pool() -> httpx.Client:
    """The dashboard's connections to the API, kept open and shared by its requests' threads."""
    return httpx.Client(timeout=TIMEOUT, limits=httpx.Limits(max_connections=32, max_keepalive_connections=8))


def login(
    http: httpx.Client, base_url: str, request_id: str, user: str, password: str, project: str, domain: str
) -> Token:
    """A token for `user` (scoped to `project` when one is named)."""
    identity = {
        "methods": ["password"],
        "password": {"user": {"name": user, "domain": {"id": domain}, "password": password}},
    }
    try:
        resp = http.post(
            f"{base_url}/identity/v3/auth/tokens",
            json={"auth": {"identity": identity, **_scope(project, domain)}},
            headers={"X-Openstack-Request-Id": request_id},
        )
    except httpx.HTTPError as exc:
        raise unreachable(base_url, exc) from exc
    return _token(resp)


@dataclass
class API:
    """One dashboard request's calls, as its user."""

    http: httpx.Client
    base_url: str
    token: str
    request_id: str

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {
            "X-Auth-Token": self.token,
            "X-Openstack-Request-Id": self.request_id,
            "Accept": "application/json",  # Glance negotiates its errors: JSON, not HTML
            "OpenStack-API-Version": COMPUTE_VERSION,
        }
        return {**headers, **(extra or {})}

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        try:
            resp = self.http.request(
                method, self.base_url + path, json=body, params=params, headers=self._headers(headers)
            )
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from exc
        return body_or_raise(resp)

    def get(self, path: str, **params: str) -> Any:
        return self.call("GET", path, params=params or None)

    def text(self, path: str) -> str:
        """A page of plain text (the Prometheus exposition at /metrics)."""
        try:
            resp = self.http.get(self.base_url + path, headers=self._headers({"Accept": "text/plain"}))
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from exc
        body_or_raise(resp)
        return resp.text

    def put(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.call("PUT", path, body, headers=headers)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.call("POST", path, body, headers=headers)

    def delete(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.call("DELETE", path, headers=headers)

    def patch(self, path: str, body: Any, content_type: str, headers: dict[str, str] | None = None) -> Any:
        return self.call("PATCH", path, body, headers={"Content-Type": content_type, **(headers or {})})

    def rescope(self, project_id: str) -> Token:
        """A token of the same user for another project (the old one stays valid)."""
        body = {
            "auth": {
                "identity": {"methods": ["token"], "token": {"id": self.token}},
                "scope": {"project": {"id": project_id}},
            }
        }
        try:
            resp = self.http.post(
                f"{self.base_url}/identity/v3/auth/tokens", json=body, headers=self._headers()
            )
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from exc
        return _token(resp)

    def revoke(self) -> None:
        """Revoke this API's own token (logout)."""
        self.call("DELETE", "/identity/v3/auth/tokens", headers={"X-Subject-Token": self.token})

    async def upload(self, path: str, chunks: AsyncIterator[bytes], length: str | None) -> None:
        """Stream an image's data to Glance as it arrives (never held whole in memory)."""
        headers = self._headers({"Content-Type": "application/octet-stream"})
        if length:
            headers["Content-Length"] = length
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(None)) as http:
                resp = await http.put(self.base_url + path, content=chunks, headers=headers)
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from exc
        body_or_raise(resp)
