"""The operator commands' way into a kumo cloud (`kumo stock`, `kumo hosts apply`): the same
authentication as the openstack CLI (clouds.yaml with --os-cloud / OS_CLOUD, or OS_* variables)
through openstacksdk, and JSON calls to a service found in the catalog."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class APIError(Exception):
    """An OpenStack error body turned into one line: '409 Conflict: <message>'."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def error_message(body: Any, fallback: str) -> str:
    """Nova's {"<kind>": {"message"}}, Keystone's {"error": {...}}, Ironic's error_message."""
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])
        if "error_message" in body:  # Ironic's: a JSON document inside the string
            try:
                fault = json.loads(body["error_message"])
            except (TypeError, ValueError):
                fault = None
            if isinstance(fault, dict) and "faultstring" in fault:
                return str(fault["faultstring"])
            return str(body["error_message"])
    return fallback


@dataclass
class Client:
    connection: Any  # openstack.connection.Connection

    def call(
        self,
        service: str,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        proxy = getattr(self.connection, service)
        resp = proxy.request(path, method, json=body, params=params, headers=headers or {}, raise_exc=False)
        try:
            data = resp.json() if resp.content else None
        except ValueError:
            data = None
        if resp.status_code >= 400:
            raise APIError(resp.status_code, error_message(data, resp.text or resp.reason or ""))
        return data


def connect(os_cloud: str | None = None) -> Client:
    """Authenticate like the openstack CLI: a named cloud from clouds.yaml, else OS_CLOUD, else
    the OS_* environment."""
    import openstack

    return Client(openstack.connect(cloud=os_cloud) if os_cloud else openstack.connect())
