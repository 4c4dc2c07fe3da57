"""Config drives of libvirt guests: built by the agent in the instance's directory from the
instance's metadata bundle (read through the agent's API link), and never taken from anywhere
else on the host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from kumo.agent.drivers.base import DriverError
from kumo.metadata import configdrive
from kumo.metadata.client import read_bundle

FILE_NAME = "config.iso"


class ApiConfigDrive:
    """The libvirt driver's default config drive source: for an instance whose spec asks for a
    config drive (`config_drive` truthy), `<directory>/config.iso` built from the bundle the
    API serves on `GET /internal/v1/instances/{uuid}/metadata`; None for any other instance."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client  # base URL .../internal/v1, with the agent token

    def __call__(self, instance: dict[str, Any], directory: Path) -> Path | None:
        if not instance.get("config_drive"):
            return None
        uuid = str(instance["uuid"])
        try:
            bundle = read_bundle(self.client, uuid)
        except httpx.HTTPError as exc:
            raise DriverError(
                f"Instance {uuid}: its metadata could not be read for its config drive: {exc}"
            ) from None
        if bundle is None:
            raise DriverError(f"Instance {uuid}: the API knows no metadata of it for its config drive.")
        return configdrive.build(bundle, directory / FILE_NAME)


def contained(uuid: str, drive: Path | None, directory: Path) -> Path | None:
    """The config drive a source returned, once it is known to be a file inside the instance's
    own directory (a path elsewhere, or one that leaves it by a symlink or "..", is refused:
    the driver never hands a guest an arbitrary host file)."""
    if drive is None:
        return None
    resolved = drive.resolve()
    if not resolved.is_relative_to(directory.resolve()):
        raise DriverError(f"Instance {uuid}: its config drive {drive} is outside its directory {directory}.")
    if not resolved.is_file():
        raise DriverError(f"Instance {uuid}: its config drive {drive} does not exist.")
    return resolved
